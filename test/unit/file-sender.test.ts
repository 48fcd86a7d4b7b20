import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesWaitingInSockets, READ_BUFFER_BYTES, SMALL_READ_BYTES, sendFileRange, WAITING_BUDGET_BYTES } from '../../src/http/read/file-sender.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-file-sender-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const openFds = () => readdirSync('/proc/self/fd').length;

/**
 * A response whose writes complete late, like a socket the kernel drains
 * slowly: it takes the bytes of a chunk only when it completes the write
 * (as the kernel does), so a buffer reused before its write completed shows
 * up as wrong bytes.
 */
class SlowResponse extends Writable {
  readonly taken: Buffer[] = [];
  constructor(private readonly delayMs: number) {
    super({ highWaterMark: 64 * 1024 * 1024 });
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    setTimeout(() => {
      this.taken.push(Buffer.from(chunk));
      done();
    }, this.delayMs);
  }
  body(): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.once('finish', () => resolve(Buffer.concat(this.taken)));
      this.once('error', reject);
    });
  }
}

function file(name: string, bytes: Buffer): number {
  const p = path.join(dir, name);
  writeFileSync(p, bytes);
  return openSync(p, 'r');
}

describe('sendFileRange', () => {
  it('sends every byte of files spanning several reads, concurrently, reusing buffers only after their write completed', async () => {
    const a = randomBytes(3 * READ_BUFFER_BYTES + 777);
    const b = randomBytes(2 * READ_BUFFER_BYTES);
    const sends = [a, b, a, b].map((bytes, i) => {
      const res = new SlowResponse(5 + i);
      const body = res.body();
      sendFileRange(res as unknown as ServerResponse, file(`f${i}`, bytes), 0, bytes.length - 1);
      return body;
    });
    const bodies = await Promise.all(sends);
    expect(bodies.map(sha)).toEqual([a, b, a, b].map(sha));
  });

  it('sends exactly the bytes [start, end] of a range, within one read and across several', async () => {
    const bytes = randomBytes(3 * READ_BUFFER_BYTES + 5);
    for (const [start, end] of [[0, 0], [10, 99], [READ_BUFFER_BYTES - 3, READ_BUFFER_BYTES + 2], [7, bytes.length - 1], [bytes.length - 1, bytes.length - 1]]) {
      const res = new SlowResponse(1);
      const body = res.body();
      sendFileRange(res as unknown as ServerResponse, file(`range-${start}-${end}`, bytes), start, end);
      expect((await body).equals(bytes.subarray(start, end + 1))).toBe(true);
    }
  });

  it('closes the file when the response closes early, and cuts a response whose file is shorter than announced', async () => {
    const before = openFds();
    const bytes = randomBytes(3 * READ_BUFFER_BYTES);
    const early = new SlowResponse(20);
    sendFileRange(early as unknown as ServerResponse, file('early', bytes), 0, bytes.length - 1);
    setTimeout(() => early.destroy(), 5);

    const short = new SlowResponse(1);
    const cut = new Promise<Error>((resolve) => short.once('error', resolve));
    sendFileRange(short as unknown as ServerResponse, file('short', randomBytes(1000)), 0, 4999);
    expect((await cut).message).toMatch(/shorter/);

    // A response that closed before the body began (the client left while the file was opened).
    const gone = new SlowResponse(1);
    gone.destroy();
    await new Promise((r) => gone.once('close', r));
    sendFileRange(gone as unknown as ServerResponse, file('gone', bytes), 0, bytes.length - 1);

    const deadline = Date.now() + 5000;
    while (openFds() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(openFds()).toBeLessThanOrEqual(before);
  });
  it('bounds the chunks waiting in sockets node-wide: past the budget, stalled clients get small chunks; closing gives the budget back', async () => {
    const bytes = randomBytes(2 * READ_BUFFER_BYTES);
    const stalledCount = WAITING_BUDGET_BYTES / READ_BUFFER_BYTES + 8;
    const firstChunks: number[] = [];
    // Clients that take nothing: every write stays pending, as on a socket whose reader stopped.
    const stalled = Array.from({ length: stalledCount }, (_, i) => {
      const res = new Writable({
        highWaterMark: 16 * 1024,
        write(chunk: Buffer) {
          firstChunks[i] ??= chunk.length;
        },
      });
      return res;
    });
    for (const [i, res] of stalled.entries()) {
      sendFileRange(res as unknown as ServerResponse, file(`stalled-${i}`, bytes), 0, bytes.length - 1);
      const deadline = Date.now() + 5000;
      while (firstChunks[i] === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    }
    expect(firstChunks.filter((n) => n === READ_BUFFER_BYTES)).toHaveLength(WAITING_BUDGET_BYTES / READ_BUFFER_BYTES);
    expect(firstChunks.filter((n) => n === SMALL_READ_BYTES)).toHaveLength(8);
    expect(bytesWaitingInSockets()).toBe(WAITING_BUDGET_BYTES + 8 * SMALL_READ_BYTES);

    for (const res of stalled) res.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(bytesWaitingInSockets()).toBe(0);
    // With the budget back, a client gets 1 MiB chunks again.
    const res = new SlowResponse(1);
    const body = res.body();
    sendFileRange(res as unknown as ServerResponse, file('after', bytes), 0, bytes.length - 1);
    expect((await body).equals(bytes)).toBe(true);
    expect(res.taken[0].length).toBe(READ_BUFFER_BYTES);
  });

  it('counts a chunk from its read on: responses that all start at once share the budget instead of each reading 1 MiB', async () => {
    const bytes = randomBytes(2 * READ_BUFFER_BYTES);
    const count = WAITING_BUDGET_BYTES / READ_BUFFER_BYTES + 8;
    const firstChunks: number[] = [];
    const stalled = Array.from({ length: count }, (_, i) => new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer) {
        firstChunks[i] ??= chunk.length;
      },
    }));
    // No waiting between starts: every read is still in flight when the next response starts.
    for (const [i, res] of stalled.entries()) sendFileRange(res as unknown as ServerResponse, file(`burst-${i}`, bytes), 0, bytes.length - 1);
    const deadline = Date.now() + 5000;
    while (firstChunks.filter((n) => n !== undefined).length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(firstChunks.filter((n) => n === READ_BUFFER_BYTES)).toHaveLength(WAITING_BUDGET_BYTES / READ_BUFFER_BYTES);
    expect(firstChunks.filter((n) => n === SMALL_READ_BYTES)).toHaveLength(8);
    expect(bytesWaitingInSockets()).toBe(WAITING_BUDGET_BYTES + 8 * SMALL_READ_BYTES);
    for (const res of stalled) res.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(bytesWaitingInSockets()).toBe(0);
  });
});
