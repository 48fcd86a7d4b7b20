import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NodeApp } from '../../src/http/app.js';
import { configWith } from '../../src/config/load.js';
import { openNode, type NodeOverrides, type NodeRuntime } from '../../src/node.js';
import { createApp } from '../../src/http/app.js';
import { silentLogger } from '../../src/logger.js';
import type { NodeContext } from '../../src/context.js';
import type { ReadDisk } from '../../src/disk/statfs.js';

/** The storage engines the HTTP suites run on without an outside service. */
export type TestEngine = 'fs' | 'memory';

/**
 * The engine testNode() uses unless told: `NANOCDN_TEST_ENGINE=memory` (set
 * by the `http-memory` project of vitest.config.ts) runs the engine-agnostic
 * HTTP suites on the memory engine; the default is fs.
 */
export const TEST_ENGINE: TestEngine = process.env.NANOCDN_TEST_ENGINE === 'memory' ? 'memory' : 'fs';

export interface TestNode {
  app: NodeApp;
  engine: TestEngine;
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
 * tests), no per-tenant share of the headroom (limits.tenant.inflightBytes:
 * with a fake disk it would decide tests of the reserve; test/http/tenant-limits.test.ts
 * sets it), silent logs, the engine TEST_ENGINE names. `config` is
 * deep-merged over config/default.json.
 */
export async function testNode(options: { config?: Record<string, unknown>; dataDir?: string; engine?: TestEngine } & NodeOverrides = {}): Promise<TestNode> {
  const engine = options.engine ?? TEST_ENGINE;
  const dataDir = options.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'nanocdn-test-'));
  const config = configWith({
    dataDir,
    logLevel: 'error',
    disk: { minFreeBytes: 0, minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100 },
    limits: { tenant: { inflightBytes: null } },
    ...options.config,
    storage: { engine, ...(options.config?.storage as object | undefined) },
  });
  const runtime = await openNode(config, { logger: silentLogger(), ...options });
  const app = createApp(runtime.ctx);
  return {
    app, engine, ctx: runtime.ctx, runtime, dataDir,
    async close() {
      await runtime.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
