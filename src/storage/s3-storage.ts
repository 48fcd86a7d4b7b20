import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand,
  ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client,
} from '@aws-sdk/client-s3';
import { HttpError, isHttpError } from '../errors.js';
import type { Logger } from '../logger.js';
import { parseName, type StoredName } from '../names.js';
import type { ClaimsPart, PendingClaim } from '../index/index.js';
import type { ByteRange, ObjectInfo, Storage, TmpStats } from './storage.js';
import { createS3Clients, translateS3Error, type S3Clients, type S3Settings } from './s3-client.js';
import { MIN_PART_BYTES, putStream } from './s3-upload.js';

export interface S3StorageOptions extends S3Settings {
  /** Name claims in the index: a name is claimed before its upload starts, refused when indexed or claimed. */
  claims: ClaimsPart;
  logger: Logger;
  now?: () => number;
  /**
   * This node process's id when it holds a lease in a shared index
   * (docs/design.md §15): its claims name it, and a claim is swept as soon
   * as its node's lease has ended, never while it runs. Null: claims are
   * swept by age (one node on its own index).
   */
  nodeId?: string | null;
  /** Bytes per multipart part (≥ 5 MiB). */
  partBytes?: number;
  /** Parts uploading at once per upload. */
  queue?: number;
}

/**
 * The S3 engine: the bytes live in a bucket (under `prefix`), the metadata
 * in the local index. Names are create-only through a pending claim in the
 * index (ClaimsPart of src/index/index.ts), since the store has neither rename nor
 * conditional PUT; the object is written to its final key while the claim
 * is held, and the claim is dropped once the store confirmed it. The
 * "spool" of this engine is the set of pending claims: tmpStats() counts
 * them, sweepTmp() cleans those a crash left (object, multipart uploads,
 * row).
 */
/** A claim of this process younger than this may be one whose write is just starting (claimed, not yet live). */
const CLAIM_SETTLE_MS = 5_000;

export class S3Storage implements Storage {
  readonly kind = 's3' as const;
  readonly tmpHasOwners = false;
  readonly claims: ClaimsPart;
  private readonly clients: S3Clients;
  private readonly now: () => number;
  readonly nodeId: string | null;
  /** Names being written by this process, with bytes read so far. */
  private readonly live = new Map<string, number>();
  constructor(private readonly options: S3StorageOptions) {
    this.clients = createS3Clients(options);
    this.claims = options.claims;
    this.now = options.now ?? Date.now;
    this.nodeId = options.nodeId ?? null;
  }

  get client(): S3Client {
    return this.clients.client;
  }

  /** The object key of a name. */
  keyOf(name: string): string {
    return `${this.options.prefix}${name}`;
  }

  /** Bytes read by uploads in flight in this process (src/disk/capacity.ts counts them as used). */
  get inflightBytes(): number {
    let sum = 0;
    for (const bytes of this.live.values()) sum += bytes;
    return sum;
  }

  async write(name: StoredName, body: Readable, signal: AbortSignal): Promise<{ size: number }> {
    signal.throwIfAborted();
    // The body is only read once the claim and the HEAD are done: an error
    // it emits before then must not go uncaught (the read sees it anyway).
    body.on('error', ignoreError);
    if (!(await this.claims.claim(name.name, this.now(), this.nodeId))) throw new HttpError('exists', undefined, { name: name.name });
    this.live.set(name.name, 0);
    // A failed write whose cleanup failed too keeps its claim: the sweep retries it later.
    let keepClaim = false;
    let written = false;
    try {
      // An object without a files row: the index was lost, or another writer put it.
      if (await this.head(name.name, signal)) throw new HttpError('exists', undefined, { name: name.name });
      const out = await putStream(this.clients.writeClient, body, {
        bucket: this.options.bucket,
        key: this.keyOf(name.name),
        partBytes: Math.max(MIN_PART_BYTES, this.options.partBytes ?? 8 * 1024 * 1024),
        queue: this.options.queue ?? 2,
        signal,
        onBytes: (bytes) => this.live.set(name.name, (this.live.get(name.name) ?? 0) + bytes),
        onUploadId: (uploadId) => this.claims.setUploadId(name.name, uploadId),
      });
      written = true;
      return out;
    } catch (err) {
      const translated = translateS3Error(err, 'write', name.name);
      if (!(isHttpError(translated) && translated.code === 'exists')) keepClaim = !(await this.discard(name.name));
      throw translated;
    } finally {
      this.live.delete(name.name);
      if (!keepClaim) await this.releaseClaim(name.name, written);
    }
  }

  /**
   * Drops the claim of a write that ended. When the index does not answer,
   * a stored object would stay without a row: it goes (the claim still
   * holds the key), the write fails with the index's error (503), and the
   * row is dropped by a later sweep.
   */
  private async releaseClaim(name: string, written: boolean): Promise<void> {
    try {
      await this.claims.release(name);
    } catch (err) {
      if (written) {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(name) })).catch((deleteErr: unknown) =>
          this.options.logger.warn('could not remove the object of an upload whose claim could not be released', { name, error: (deleteErr as Error).message }));
      }
      throw err;
    }
  }

  /** After a failed write: the key is ours (we hold the claim), so whatever reached the store goes. False when that failed too. */
  private async discard(name: string): Promise<boolean> {
    try {
      await this.cleanupKey(name, (await this.claims.get(name))?.uploadId ?? null);
      return true;
    } catch (err) {
      this.options.logger.warn('cleanup after a failed upload failed; the pending sweep retries it', { name, error: (err as Error).message });
      return false;
    }
  }

  /** Deletes the object and aborts the multipart uploads of one key. */
  private async cleanupKey(name: string, uploadId: string | null): Promise<void> {
    const Key = this.keyOf(name);
    const Bucket = this.options.bucket;
    if (uploadId) await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId })).catch(ignoreNoSuchUpload);
    for await (const upload of this.multipartUploads(Key)) {
      if (upload.key === Key) await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: upload.uploadId })).catch(ignoreNoSuchUpload);
    }
    await this.client.send(new DeleteObjectCommand({ Bucket, Key }));
  }

  /** HEAD of the object: size and mtime, or null. */
  private async head(name: string, signal?: AbortSignal): Promise<ObjectInfo | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(name) }), { abortSignal: signal });
      return { name, size: out.ContentLength ?? 0, mtimeMs: out.LastModified?.getTime() ?? 0 };
    } catch (err) {
      const translated = translateS3Error(err, 'read', name);
      if (isHttpError(translated) && translated.code === 'not_found') return null;
      throw translated;
    }
  }

  /**
   * A claimed name reports as present (so a second upload gets 409 before
   * its body is read); otherwise the store answers (HEAD), so reconcile sees
   * the truth. GET/HEAD/304 of indexed files never come here: they are
   * answered from the index row (src/http/read/source.ts).
   */
  async stat(name: StoredName): Promise<ObjectInfo | null> {
    const claim = await this.claims.get(name.name);
    if (claim) return { name: name.name, size: this.live.get(name.name) ?? 0, mtimeMs: claim.startedMs };
    return this.head(name.name);
  }

  async open(name: StoredName, range?: ByteRange): Promise<Readable> {
    try {
      const out = await this.client.send(new GetObjectCommand({
        Bucket: this.options.bucket, Key: this.keyOf(name.name), Range: range ? `bytes=${range.start}-${range.end}` : undefined,
      }));
      return out.Body as Readable;
    } catch (err) {
      throw translateS3Error(err, 'read', name.name);
    }
  }

  /** DELETE in S3 answers 204 whether or not the key existed, so a HEAD says which. */
  async remove(name: StoredName): Promise<boolean> {
    const existed = (await this.head(name.name)) !== null;
    if (!existed) return false;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(name.name) }));
      return true;
    } catch (err) {
      throw translateS3Error(err, 'read', name.name);
    }
  }

  /** Every committed object under the prefix, from ListObjectsV2 (size, last modified); keys that are not valid names are skipped. */
  async *list(): AsyncIterable<ObjectInfo> {
    const { bucket, prefix } = this.options;
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }))
        .catch((err: unknown) => { throw translateS3Error(err, 'read'); });
      for (const object of page.Contents ?? []) {
        const name = object.Key!.slice(prefix.length);
        if (!isValidName(name) || await this.claims.get(name)) continue;
        yield { name, size: object.Size ?? 0, mtimeMs: object.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async tmpStats(now: number): Promise<TmpStats> {
    const claims = await this.claims.all(); // oldest first
    return { files: claims.length, bytes: this.inflightBytes, oldestAgeMs: claims.length ? Math.max(0, now - claims[0].startedMs) : null };
  }

  /**
   * Whether a claim no live write of this process owns is left over: this
   * process's own claim once it is CLAIM_SETTLE_MS old (a release, a
   * cleanup or a claim's answer that the index did not give: it was down); a
   * claim of another node as soon as that node's lease has ended (it died
   * or left; docs/design.md §15) and never while it runs, however old; a
   * claim without a node when it is older than `olderThanMs`.
   */
  private abandoned(claim: PendingClaim, olderThanMs: number, now: number): boolean {
    if (this.live.has(claim.name)) return false;
    if (claim.nodeId !== null && claim.nodeId === this.nodeId) return now - claim.startedMs >= CLAIM_SETTLE_MS;
    if (claim.nodeId !== null) return claim.leaseUntilMs === null || claim.leaseUntilMs <= now;
    return now - claim.startedMs >= olderThanMs;
  }

  /**
   * Cleans claims left over (abandoned()): object deleted if present,
   * multipart uploads of the key aborted, row dropped. Then aborts multipart
   * uploads under the prefix that no live write owns, initiated before the
   * cutoff, unless a claim of a live node holds their key (checked again
   * just before: a claim is always taken before its upload starts).
   */
  async sweepTmp(olderThanMs: number, now: number): Promise<{ files: number; bytes: number }> {
    let files = 0;
    const kept = new Set<string>();
    for (const claim of await this.claims.all()) {
      if (!this.abandoned(claim, olderThanMs, now)) {
        kept.add(this.keyOf(claim.name));
        continue;
      }
      await this.cleanupKey(claim.name, claim.uploadId);
      await this.claims.release(claim.name);
      files++;
    }
    for await (const upload of this.multipartUploads(this.options.prefix)) {
      if (kept.has(upload.key) || now - upload.initiatedMs < olderThanMs) continue;
      const name = upload.key.slice(this.options.prefix.length);
      if (this.live.has(name)) continue;
      const claim = await this.claims.get(name);
      if (claim && !this.abandoned(claim, olderThanMs, now)) continue;
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: upload.key, UploadId: upload.uploadId }))
        .catch(ignoreNoSuchUpload);
      files++;
    }
    // Objects of crashed uploads were never acknowledged nor counted as committed.
    return { files, bytes: 0 };
  }

  /** In-progress multipart uploads whose key starts with `prefix`. */
  async *multipartUploads(prefix: string): AsyncIterable<{ key: string; uploadId: string; initiatedMs: number }> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.client.send(new ListMultipartUploadsCommand({
        Bucket: this.options.bucket, Prefix: prefix || undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker,
      }));
      for (const upload of page.Uploads ?? []) {
        yield { key: upload.Key!, uploadId: upload.UploadId!, initiatedMs: upload.Initiated?.getTime() ?? 0 };
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /** The bucket answers to our credentials. */
  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const why = status === 404 ? 'does not exist' : status === 403 ? 'refuses these credentials (403)' : `is not reachable (${(err as Error).name}: ${(err as Error).message})`;
      throw new HttpError('store_unavailable', `Bucket "${this.options.bucket}" at ${this.options.endpoint} ${why}.`);
    }
  }

  /** The fs engine creates its directories here; a bucket is only checked (it is never created). */
  async init(): Promise<void> {
    await this.check();
  }

  async close(): Promise<void> {
    this.clients.destroy();
  }
}

function isValidName(name: string): boolean {
  try {
    parseName(name);
    return true;
  } catch {
    return false;
  }
}

function ignoreError(): void {
  // The stream keeps its error (readable.errored); the reader reports it.
}

function ignoreNoSuchUpload(err: unknown): void {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e.name === 'NoSuchUpload' || e.$metadata?.httpStatusCode === 404) return;
  throw err;
}
