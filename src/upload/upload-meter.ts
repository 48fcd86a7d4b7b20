import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { HttpError } from '../errors.js';
import { formatBytes } from '../config/units.js';
import type { Hold } from '../accounting/ledger.js';

/** Bytes the meter may hold on each side; part of DiskGuard's unflushedBytesPerUpload. */
export const METER_BUFFER = 16 << 10;

/**
 * Sits between the request body and the storage engine: hashes, counts
 * bytes against the size limit and the upload's hold (disk and quota), and verifies the
 * declared checksum before the last byte is handed on, so a mismatch fails
 * the write before anything becomes visible.
 */
export class UploadMeter extends Transform {
  bytes = 0;
  private readonly hash: Hash = createHash('sha256');
  private digest: string | undefined;

  constructor(
    private readonly limits: {
      maxBytes: number;
      /** Counts the bytes; its decision (`decided`, a clustered worker's disk spare) is awaited before the last byte is handed on. */
      hold: Pick<Hold, 'wrote' | 'decided'>;
      expectedSha256?: string;
      /** Settles when the enclosing request body is known to be good (multipart); the last byte waits for it. */
      bodyComplete?: Promise<void>;
      /** Checks the whole body's sha256 before the last byte is handed on (a retired name, src/retired-names.ts); rejects to fail the write. */
      checkSha256?: (sha256: string) => Promise<void>;
    },
  ) {
    // Small buffers: bytes counted here but not yet on disk are bounded by
    // this plus the engine's write buffer (DiskGuard unflushedBytesPerUpload),
    // and so is the memory an upload holds.
    super({ highWaterMark: METER_BUFFER });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const next = this.bytes + chunk.length;
    if (next > this.limits.maxBytes) {
      done(new HttpError('upload_too_large', `The upload is larger than the maximum of ${formatBytes(this.limits.maxBytes)}.`, {
        maxBytes: this.limits.maxBytes,
      }));
      return;
    }
    let growing: void | Promise<void>;
    try {
      growing = this.limits.hold.wrote(chunk.length);
    } catch (err) {
      done(err as Error);
      return;
    }
    const pass = () => {
      this.bytes = next;
      this.hash.update(chunk);
      done(null, chunk);
    };
    // Growing a hold may wait (eviction, a remote ledger): the next chunk waits with it.
    if (growing) growing.then(pass, (err: unknown) => done(err as Error));
    else pass();
  }

  override _flush(done: TransformCallback): void {
    this.digest = this.hash.digest('hex');
    const expected = this.limits.expectedSha256;
    if (expected && expected !== this.digest) {
      done(new HttpError('checksum_mismatch', undefined, { expectedSha256: expected, actualSha256: this.digest }));
      return;
    }
    const { hold, checkSha256, bodyComplete } = this.limits;
    const digest = this.digest;
    Promise.resolve()
      .then(() => hold.decided?.())
      .then(() => checkSha256?.(digest))
      .then(() => bodyComplete)
      .then(() => done(), (err: Error) => done(err));
  }

  get sha256(): string {
    if (!this.digest) throw new Error('sha256 read before the body ended');
    return this.digest;
  }
}
