import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Cuts a response whose client stopped reading (config
 * `download.sendTimeout`, like nginx's `send_timeout`): when bytes wait to
 * go out and the kernel has taken none of them for `timeoutMs`, `onStall`
 * runs and the response is destroyed, which closes its file or store stream
 * and its socket. A slow client that still takes bytes is never cut.
 *
 * Progress is read from the socket: `bytesWritten` grows when the sender
 * hands it more, and libuv's `writeQueueSize` (an internal of Node's stream
 * handle, read-only here) shrinks with every partial write the kernel
 * accepts, so a 1 MiB chunk trickling out to a slow phone counts as
 * progress. test/system/send-timeout.test.ts fails if either stops meaning that.
 */
export function cutWhenStalled(res: ServerResponse, timeoutMs: number, onStall: () => void): void {
  const socket = res.socket;
  if (socket === null || timeoutMs <= 0) return;
  let written = -1;
  let queued = -1;
  let stalledSince = 0;
  const check = () => {
    const now = Date.now();
    const nowWritten = socket.bytesWritten;
    const nowQueued = writeQueueSize(socket);
    if (nowWritten !== written || nowQueued !== queued || (nowQueued === 0 && socket.writableLength === 0)) {
      written = nowWritten;
      queued = nowQueued;
      stalledSince = now;
      return;
    }
    if (now - stalledSince < timeoutMs) return;
    clearInterval(timer);
    onStall();
    res.destroy();
  };
  const timer = setInterval(check, Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4))));
  timer.unref();
  check();
  res.once('close', () => clearInterval(timer));
}

/** Whether every byte of `res` so far has been taken by the kernel (nothing buffered in Node or libuv). */
export function isFlushed(res: ServerResponse): boolean {
  const socket = res.socket;
  return socket === null || (res.writableLength === 0 && socket.writableLength === 0 && writeQueueSize(socket) === 0);
}

function writeQueueSize(socket: Socket): number {
  return (socket as Socket & { _handle?: { writeQueueSize?: number } | null })._handle?.writeQueueSize ?? 0;
}
