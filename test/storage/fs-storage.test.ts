import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FsStorage } from '../../src/storage/fs-storage.js';
import { storageContract } from './contract.js';

storageContract('fs', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'nanocdn-fs-'));
  const storage = new FsStorage({ dataDir, fsync: true });
  await storage.init();
  return { storage, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
});
