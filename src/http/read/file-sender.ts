import { close, read } from 'node:fs';
import type { ServerResponse } from 'node:http';

/** Read size for bodies that are streamed: 1 MiB reads cost far fewer syscalls and callbacks than 64 KiB ones. */
export const READ_BUFFER_BYTES = 1024 * 1024;
/** Read size once the node's chunks waiting in sockets reach WAITING_BUDGET_BYTES. */
export const SMALL_READ_BYTES = 16 * 1024;
/** Bytes of all responses' chunks read or handed to sockets and not yet taken by the kernel, beyond which reads are small. */
export const WAITING_BUDGET_BYTES = 32 * 1024 * 1024;
/** Free bytes kept for reuse per buffer size (at most 32 MiB each); more in flight at once are allocated and left to the GC. */
const POOL_BYTES = 32 * 1024 * 1024;
const pools = new Map<number, Buffer[]>();
/** Bytes of chunks being read for responses or written to them and not yet taken by the kernel (node-wide). */
let waitingBytes = 0;

/** The bytes of chunks the node's responses are reading or have handed to sockets that have not taken them yet. */
export function bytesWaitingInSockets(): number {
  return waitingBytes;
}

/**
 * Sends bytes [start, end] (inclusive, as HTTP ranges) of an open file as the
 * body of `res` (headers already written) and closes the file. Reads go into
 * pooled buffers: a fresh 1 MiB buffer per read (fs.createReadStream) cost
 * about as much CPU in allocation and GC as the copying itself
 * (docs/read-path.md). A buffer goes back to its pool only once its write
 * has completed, i.e. once the kernel has the bytes.
 *
 * A chunk whose client stopped reading stays in the node until the client
 * reads or download.sendTimeout cuts it, so the chunks waiting in sockets
 * are bounded node-wide: reads are 1 MiB while all waiting chunks together
 * stay within 32 MiB, and 16 KiB beyond (1,000 stalled readers: +1 GB RSS
 * with 1 MiB chunks for all; with this budget about +33 MB; README,
 * Performance). A chunk counts from the moment its read starts, so a
 * thousand responses starting at once do not all see room for 1 MiB.
 * Clients that keep up take their chunks quickly and hold their share of
 * the budget only meanwhile: 32 downloads of 1.6 MB at full speed still
 * read 1 MiB at a time. The next read
 * starts while the socket still takes the previous chunk, unless it pushes
 * back. A client that goes away stops the reads; a read error or a file
 * shorter than `end` cuts the response (its Content-Length can no longer
 * hold).
 */
export function sendFileRange(res: ServerResponse, fd: number, start: number, end: number): void {
  let position = start;
  const stop = end + 1;
  let reading = false;
  let fdOpen = true;
  let gone = false;
  /** This response's share of waitingBytes; given back at 'close' if a write never completes. */
  let waitingHere = 0;

  const closeFd = () => {
    if (!fdOpen || reading) return;
    fdOpen = false;
    close(fd, () => undefined);
  };
  res.once('close', () => {
    gone = true;
    waitingBytes -= waitingHere;
    waitingHere = 0;
    closeFd();
  });
  // A client that left while the file was being opened: its 'close' has fired already.
  if (res.destroyed) gone = true;

  const next = (): void => {
    if (gone) return closeFd();
    const size = waitingBytes + READ_BUFFER_BYTES <= WAITING_BUDGET_BYTES ? READ_BUFFER_BYTES : SMALL_READ_BYTES;
    const buffer = pools.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
    // Counted from the read on: responses that start at once must not all see room for 1 MiB.
    const want = Math.min(size, stop - position);
    waitingBytes += want;
    waitingHere += want;
    reading = true;
    read(fd, buffer, 0, want, position, (err, bytesRead) => {
      reading = false;
      if (!gone) {
        const unread = want - (err ? 0 : bytesRead);
        waitingBytes -= unread;
        waitingHere -= unread;
      }
      if (gone || err || bytesRead === 0) {
        release(buffer);
        if (!gone) res.destroy(err ?? new Error('file shorter than its Content-Length'));
        return closeFd();
      }
      position += bytesRead;
      const last = position >= stop;
      const flowing = res.write(bytesRead === size ? buffer : buffer.subarray(0, bytesRead), () => {
        if (!gone) {
          waitingBytes -= bytesRead;
          waitingHere -= bytesRead;
        }
        release(buffer);
      });
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
  let pool = pools.get(buffer.length);
  if (pool === undefined) pools.set(buffer.length, pool = []);
  if ((pool.length + 1) * buffer.length <= POOL_BYTES) pool.push(buffer);
}
