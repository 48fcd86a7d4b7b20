import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListMultipartUploadsCommand, ListObjectsV2Command,
  AbortMultipartUploadCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { createS3Clients } from '../../src/storage/s3-client.js';
import { freePorts, REPO_ROOT } from './spawn-server.js';
import { requirement } from './system-tools.js';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'swift-test-cluster.sh');

/** Is OpenStack Swift installed (Debian's packages, as scripts/swift-test-cluster.sh install does)? */
function swiftInstalled(): boolean {
  if (existsSync('/usr/bin/swift-proxy-server')) return true;
  return spawnSync('/usr/bin/python3', ['-c', 'import swift'], { stdio: 'ignore' }).status === 0;
}

/** requirement() for test files that need the Swift cluster: runs in CI, skips loudly elsewhere. */
export function swiftRequirement(): boolean {
  return requirement('OpenStack Swift (scripts/swift-test-cluster.sh install)', swiftInstalled(), 'run `scripts/swift-test-cluster.sh install` as root');
}

export interface SwiftCluster {
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** An SDK client set up with the Swift quirks (src/storage/s3-client.ts). */
  readonly s3: S3Client;
  /** storage.s3 config for a node on `bucket`. */
  s3Config(bucket: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** Creates a fresh bucket with a unique name. */
  newBucket(label?: string): Promise<string>;
  /** Keys in the bucket (all, or under prefix). */
  keys(bucket: string, prefix?: string): Promise<string[]>;
  /** In-progress multipart uploads of the bucket. */
  multipartUploads(bucket: string): Promise<{ key: string; uploadId: string }[]>;
  /** Empties and deletes a bucket (DeleteObjects: exercises the Content-MD5 quirk). */
  dropBucket(bucket: string): Promise<void>;
  /** Stops the daemons (by pid, via the script) and removes the root. */
  stop(): Promise<void>;
}

/**
 * Starts a private Swift-All-In-One for one test file: its own root and its
 * own free loopback ports, so files (and parallel projects) never share a
 * cluster. `env` adds SAIO_* settings (e.g. SAIO_OBJECT_DEVICE_MB).
 */
export async function startSwift(options: { env?: Record<string, string> } = {}): Promise<SwiftCluster> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-swift-'));
  const [proxy, object, container, account, memcache] = await freePorts(5);
  const env = {
    ...process.env,
    SAIO_PROXY_PORT: String(proxy), SAIO_OBJECT_PORT: String(object), SAIO_CONTAINER_PORT: String(container),
    SAIO_ACCOUNT_PORT: String(account), SAIO_MEMCACHE_PORT: String(memcache),
    // Python start-up is slow on a loaded CI machine (45 s seen at load 12).
    SAIO_START_TIMEOUT: '150',
    ...options.env,
  };
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)(SCRIPT, ['start', root], { env, timeout: 150_000, maxBuffer: 1 << 20 }));
  } catch (err) {
    await promisify(execFile)(SCRIPT, ['wipe', root], { env }).catch(() => undefined);
    throw new Error(`swift-test-cluster.sh start failed: ${(err as Error).message}\n${(err as { stderr?: string }).stderr ?? ''}`, { cause: err });
  }
  const vars: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) vars[m[1]] = m[2];
  }
  const settings = {
    endpoint: vars.S3_ENDPOINT, region: vars.S3_REGION, accessKeyId: vars.S3_ACCESS_KEY_ID,
    secretAccessKey: vars.S3_SECRET_ACCESS_KEY, forcePathStyle: true, bucket: '', prefix: '',
  };
  const clients = createS3Clients(settings);
  const s3 = clients.client;

  const keys = async (bucket: string, prefix?: string) => {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      out.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  };
  const multipartUploads = async (bucket: string) => {
    const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    return (page.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
  };

  return {
    s3,
    endpoint: settings.endpoint, region: settings.region, accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey,
    s3Config(bucket, extra = {}) {
      return {
        engine: 's3',
        s3: {
          endpoint: settings.endpoint, region: settings.region, bucket, accessKeyId: settings.accessKeyId,
          secretAccessKey: settings.secretAccessKey, forcePathStyle: true, capacityBytes: '10GiB', ...extra,
        },
      };
    },
    async newBucket(label = 'b') {
      const bucket = `nanocdn-${label}-${randomBytes(4).toString('hex')}`;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      return bucket;
    },
    keys,
    multipartUploads,
    async dropBucket(bucket) {
      for (const upload of await multipartUploads(bucket)) {
        await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.key, UploadId: upload.uploadId }));
      }
      for (let all = await keys(bucket); all.length > 0; all = await keys(bucket)) {
        await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: all.slice(0, 1000).map((Key) => ({ Key })) } }));
      }
      await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    },
    async stop() {
      clients.destroy();
      await promisify(execFile)(SCRIPT, ['wipe', root], { env });
    },
  };
}
