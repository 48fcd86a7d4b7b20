import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { ReadDisk } from '../disk/statfs.js';
import { FileIndex } from '../index/file-index.js';
import { silentLogger, type Logger } from '../logger.js';
import { S3Storage } from './s3-storage.js';

/**
 * Opens the s3 engine for a node: the index stays local (in the data dir,
 * with the pending claims), the bytes go to the bucket, checked reachable
 * before the node goes on. The disk guard's reading is capacity-based:
 * total = storage.s3.capacityBytes, free = capacity − committed − in flight.
 */
export async function openS3Engine(config: Config, dataDir: string, logger: Logger, now: () => number): Promise<{ storage: S3Storage; index: FileIndex; readDisk: ReadDisk; where: string }> {
  const capacityBytes = config.storage.s3.capacityBytes;
  if (capacityBytes === null) throw new Error('storage.s3.capacityBytes is required when storage.engine is "s3"');
  await mkdir(dataDir, { recursive: true });
  const index = new FileIndex(path.join(dataDir, 'index.sqlite'));
  const storage = s3StorageOf(config, { index, logger, now });
  try {
    await storage.check();
  } catch (err) {
    await storage.close();
    index.close();
    throw err;
  }
  return {
    storage, index,
    readDisk: async () => storage.capacityReading(capacityBytes),
    where: `s3://${config.storage.s3.bucket}/${config.storage.s3.prefix}`,
  };
}

/**
 * The engine on the configured bucket. Without an index (tools that only
 * list and read, e.g. `nanocdn reindex`), claims stay in memory.
 */
export function s3StorageOf(config: Config, options: { index?: FileIndex; logger?: Logger; now?: () => number } = {}): S3Storage {
  const s3 = config.storage.s3;
  // The schema requires these for engine "s3"; the check narrows the types.
  if (!s3.endpoint || !s3.bucket || !s3.accessKeyId || !s3.secretAccessKey) {
    throw new Error('storage.s3 needs endpoint, bucket, accessKeyId and secretAccessKey when storage.engine is "s3"');
  }
  return new S3Storage({
    endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, prefix: s3.prefix, accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey, forcePathStyle: s3.forcePathStyle,
    index: options.index, logger: options.logger ?? silentLogger(), now: options.now,
  });
}
