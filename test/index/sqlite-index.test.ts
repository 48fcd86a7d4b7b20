import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openIndex } from '../../src/index/open.js';
import { indexContract } from './contract.js';

indexContract('sqlite', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-sqlite-index-'));
  const config = { index: { engine: 'sqlite' as const, url: null } };
  return {
    index: await openIndex(config, dir),
    // Another connection to the same file, as another process has.
    open: () => openIndex(config, dir),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
