import type { Config } from '../config/schema.js';
import type { ClaimsPart } from '../index/index.js';
import { silentLogger, type Logger } from '../logger.js';
import { S3Storage } from './s3-storage.js';

/**
 * Opens the s3 engine for a node: the bytes go to the bucket, checked
 * reachable before the node goes on; the name claims live in the node's
 * index. (The disk guard's capacity reading is src/disk/capacity.ts.)
 */
export async function openS3Engine(config: Config, claims: ClaimsPart, logger: Logger, now: () => number, nodeId: string | null = null): Promise<{ storage: S3Storage; where: string }> {
  if (config.storage.s3.capacityBytes === null) throw new Error('storage.s3.capacityBytes is required when storage.engine is "s3"');
  const storage = s3StorageOf(config, { claims, logger, now, nodeId });
  try {
    await storage.check();
  } catch (err) {
    await storage.close();
    throw err;
  }
  return { storage, where: `s3://${config.storage.s3.bucket}/${config.storage.s3.prefix}` };
}

/** The engine on the configured bucket. */
export function s3StorageOf(config: Config, options: { claims: ClaimsPart; logger?: Logger; now?: () => number; nodeId?: string | null }): S3Storage {
  const s3 = config.storage.s3;
  // The schema requires these for engine "s3"; the check narrows the types.
  if (!s3.endpoint || !s3.bucket || !s3.accessKeyId || !s3.secretAccessKey) {
    throw new Error('storage.s3 needs endpoint, bucket, accessKeyId and secretAccessKey when storage.engine is "s3"');
  }
  return new S3Storage({
    endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, prefix: s3.prefix, accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey, forcePathStyle: s3.forcePathStyle,
    claims: options.claims, logger: options.logger ?? silentLogger(), now: options.now, nodeId: options.nodeId ?? null,
  });
}
