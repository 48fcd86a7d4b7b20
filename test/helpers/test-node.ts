import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Express } from 'express';
import { configWith } from '../../src/config/load.js';
import { openNode, type NodeOverrides, type NodeRuntime } from '../../src/node.js';
import { createApp } from '../../src/http/app.js';
import { silentLogger } from '../../src/logger.js';
import type { NodeContext } from '../../src/context.js';
import type { ReadDisk } from '../../src/disk/statfs.js';

export interface TestNode {
  app: Express;
  ctx: NodeContext;
  runtime: NodeRuntime;
  dataDir: string;
  close(): Promise<void>;
}

/** A disk reading that tests set by hand: `disk.free = ...`. */
export function fakeDisk(totalBytes: number, freeBytes: number): ReadDisk & { total: number; free: number } {
  const reader = (async () => ({ totalBytes: reader.total, freeBytes: reader.free })) as ReadDisk & { total: number; free: number };
  reader.total = totalBytes;
  reader.free = freeBytes;
  return reader;
}

/**
 * A node on a fresh temp data dir, for supertest (`request(node.app)`).
 * Defaults: no disk reserve (the host disk's free space must not decide
 * tests), silent logs. `config` is deep-merged over config/default.json.
 */
export async function testNode(options: { config?: Record<string, unknown>; dataDir?: string } & NodeOverrides = {}): Promise<TestNode> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'nanocdn-test-'));
  const config = configWith({
    dataDir,
    logLevel: 'error',
    disk: { minFreeBytes: 0, minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100 },
    ...options.config,
  });
  const runtime = await openNode(config, { logger: silentLogger(), ...options });
  const app = createApp(runtime.ctx);
  return {
    app, ctx: runtime.ctx, runtime, dataDir,
    async close() {
      await runtime.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
