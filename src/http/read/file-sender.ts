import { close, read } from 'node:fs';
import type { ServerResponse } from 'node:http';

/** Read size for bodies that are streamed: 1 MiB reads cost far fewer syscalls and callbacks than 64 KiB ones. */
export const READ_BUFFER_BYTES = 1024 * 1024;
/** Free buffers kept for reuse (at most 32 MiB); more in flight at once are allocated and left to the GC. */
const POOL_MAX = 32;
const pool: Buffer[] = [];

/**
 * Sends bytes [start, end] (inclusive, as HTTP ranges) of an open file as the
 * body of `res` (headers already written) and closes the file. Reads go into
 * pooled 1 MiB buffers: a fresh 1 MiB buffer per read (fs.createReadStream)
 * cost about as much CPU in allocation and GC as the copying itself
 * (docs/read-path.md). A buffer goes back to the pool only once its write
 * has completed, i.e. once the kernel has the bytes. The next read starts
 * while the socket still takes the previous chunk, unless it pushes back. A
 * client that goes away stops the reads; a read error or a file shorter than
 * `end` cuts the response (its Content-Length can no longer hold).
 */
export function sendFileRange(res: ServerResponse, fd: number, start: number, end: number): void {
  let position = start;
  const stop = end + 1;
  let reading = false;
  let fdOpen = true;
  let gone = false;

  const closeFd = () => {
    if (!fdOpen || reading) return;
    fdOpen = false;
    close(fd, () => undefined);
  };
  res.once('close', () => {
    gone = true;
    closeFd();
  });
  // A client that left while the file was being opened: its 'close' has fired already.
  if (res.destroyed) gone = true;

  const next = (): void => {
    if (gone) return closeFd();
    const buffer = pool.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    reading = true;
    read(fd, buffer, 0, Math.min(READ_BUFFER_BYTES, stop - position), position, (err, bytesRead) => {
      reading = false;
      if (gone || err || bytesRead === 0) {
        release(buffer);
        if (!gone) res.destroy(err ?? new Error('file shorter than its Content-Length'));
        return closeFd();
      }
      position += bytesRead;
      const last = position >= stop;
      const flowing = res.write(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead), () => release(buffer));
      if (last) {
        closeFd();
        res.end();
      } else if (flowing) {
        next();
      } else {
        res.once('drain', next);
      }
    });
  };
  next();
}

function release(buffer: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(buffer);
}
