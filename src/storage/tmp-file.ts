import fs from 'node:fs';
import { Writable } from 'node:stream';

/**
 * Bytes an upload gathers before one write to its tmp file: a 1.6 MB upload
 * is 13 writes instead of 25 (each write is a round trip through the thread
 * pool, the largest CPU cost of an upload after sha256 in the profile).
 */
export const WRITE_BATCH = 128 << 10;
/** What the writable side buffers while a batch is being written; the body is paused beyond it. */
export const WRITE_HWM = 16 << 10;
/**
 * Batch buffers in use per process at most (2 MiB); uploads beyond them
 * write each chunk as it comes. 64 (8 MiB) cost 64 × 100 MB uploads +15 MB
 * of peak RSS against the unbatched writes; 16 serve the bench's 8 and half
 * its 32 concurrent uploads.
 */
export const BATCH_BUFFERS = 16;
/** Free batch buffers kept for the next uploads (512 KiB); the rest go to the GC. */
const KEEP_FREE = 4;

type Callback = (err?: Error | null) => void;

/**
 * The batch buffers of all uploads: reused, so a busy node does not make
 * 128 KiB of garbage per upload, and bounded, so a thousand uploads at once
 * (slow clients) cannot hold a thousand of them.
 */
class BatchBuffers {
  private readonly free: Buffer[] = [];
  private inUse = 0;

  get used(): number {
    return this.inUse;
  }

  take(): Buffer | undefined {
    if (this.inUse >= BATCH_BUFFERS) return undefined;
    this.inUse++;
    return this.free.pop() ?? Buffer.allocUnsafeSlow(WRITE_BATCH);
  }

  give(buffer: Buffer): void {
    this.inUse--;
    if (this.free.length < KEEP_FREE) this.free.push(buffer);
  }
}

const buffers = new BatchBuffers();

/** Batch buffers held by uploads now (tests: every one comes back). */
export function batchBuffersInUse(): number {
  return buffers.used;
}

/**
 * An upload's tmp file (src/storage/fs-storage.ts): created with O_EXCL,
 * written in WRITE_BATCH pieces, fsynced (when asked) and closed before
 * 'finish', so a pipeline into it resolves only once the bytes are durable
 * and the close succeeded (close errors are never dropped).
 *
 * The socket's chunks (up to 64 KiB each) are copied into the upload's
 * batch buffer and let go at once: they die young and the next scavenge
 * frees them, where chunks kept until their write (a stream's buffer)
 * outlive scavenges and wait for a full GC — measured as +20–25 MB of
 * RSS with 64 uploads in flight. The memory an upload holds is this one
 * buffer plus WRITE_HWM; when no batch buffer is free, chunks are written
 * one by one as they come.
 */
export class TmpFileWriter extends Writable {
  /** Bytes written to the file so far. */
  bytesWritten = 0;
  private fd: number | undefined;
  private batch: Buffer | undefined;
  private batched = 0;
  /** A write or fsync in the thread pool: the fd is closed and the batch buffer given back only after it. */
  private busy = false;
  private afterIo: (() => void) | undefined;

  constructor(private readonly path: string, private readonly fsync: boolean) {
    super({ highWaterMark: WRITE_HWM });
  }

  override _construct(done: Callback): void {
    fs.open(this.path, 'wx', 0o644, (err, fd) => {
      if (!err) this.fd = fd;
      done(err);
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: Callback): void {
    this.batch ??= buffers.take();
    const batch = this.batch;
    if (!batch) {
      this.writeAll(chunk, 0, chunk.length, done);
      return;
    }
    let copied = 0;
    const fill = (err?: Error | null): void => {
      if (err) { done(err); return; }
      while (copied < chunk.length) {
        const n = chunk.copy(batch, this.batched, copied);
        this.batched += n;
        copied += n;
        if (this.batched === batch.length) {
          this.flush(fill);
          return;
        }
      }
      done();
    };
    fill();
  }

  override _final(done: Callback): void {
    const end = (err?: Error | null): void => {
      if (err) { done(err); return; }
      if (!this.fsync) { this.close(done); return; }
      this.io((fd, cb) => fs.fsync(fd, cb), (syncErr) => (syncErr ? done(syncErr) : this.close(done)));
    };
    this.flush(end);
  }

  override _destroy(err: Error | null, done: Callback): void {
    if (this.busy) {
      this.afterIo = () => this._destroy(err, done);
      return;
    }
    this.giveBack();
    const fd = this.fd;
    if (fd === undefined) { done(err); return; }
    this.fd = undefined;
    fs.close(fd, (closeErr) => done(err ?? closeErr));
  }

  /** Writes what the batch holds, then empties it. */
  private flush(done: Callback): void {
    const batch = this.batch;
    if (!batch || this.batched === 0) { done(); return; }
    this.writeAll(batch, 0, this.batched, (err) => {
      if (!err) this.batched = 0;
      done(err);
    });
  }

  /** buffer[offset, offset + length) to the file, again after a short write. */
  private writeAll(buffer: Buffer, offset: number, length: number, done: Callback): void {
    this.io((fd, cb) => fs.write(fd, buffer, offset, length, null, cb), (err, written = 0) => {
      if (err) { done(err); return; }
      this.bytesWritten += written;
      if (written < length) this.writeAll(buffer, offset + written, length - written, done);
      else done();
    });
  }

  /** One thread-pool call on the fd; a destroy that came meanwhile runs once it is back. */
  private io(start: (fd: number, cb: (err: Error | null, n?: number) => void) => void, then: (err: Error | null, n?: number) => void): void {
    const fd = this.fd;
    if (fd === undefined) { then(new Error('the tmp file was closed')); return; }
    this.busy = true;
    start(fd, (err, n) => {
      this.busy = false;
      const after = this.afterIo;
      this.afterIo = undefined;
      after?.();
      then(err, n);
    });
  }

  private close(done: Callback): void {
    this.giveBack();
    const fd = this.fd;
    if (fd === undefined) { done(new Error('the tmp file was closed')); return; }
    this.fd = undefined;
    fs.close(fd, done);
  }

  private giveBack(): void {
    if (this.batch) buffers.give(this.batch);
    this.batch = undefined;
    this.batched = 0;
  }
}
