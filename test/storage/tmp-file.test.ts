import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BATCH_BUFFERS, TmpFileWriter, WRITE_BATCH, batchBuffersInUse } from '../../src/storage/tmp-file.js';

/** A body in pieces of the given sizes (socket-like chunks, and some larger than a batch). */
function pieces(sizes: number[]): Buffer[] {
  return sizes.map((n) => randomBytes(n));
}

describe('TmpFileWriter (an upload\'s tmp file, batched writes)', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'nanocdn-tmpfile-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('writes every byte in order across batch boundaries, and counts them', async () => {
    const body = pieces([1, 65_536, 65_535, WRITE_BATCH, 3 * WRITE_BATCH + 7, 10, 65_536, 0, 1_000]);
    const file = path.join(dir, 'a');
    const out = new TmpFileWriter(file, true);
    await pipeline(Readable.from(body), out);
    const expected = Buffer.concat(body);
    expect(out.bytesWritten).toBe(expected.length);
    expect((await readFile(file)).equals(expected)).toBe(true);
  });

  it('creates the file exclusively: an existing tmp name fails the write', async () => {
    const file = path.join(dir, 'b');
    await pipeline(Readable.from([Buffer.from('first')]), new TmpFileWriter(file, false));
    await expect(pipeline(Readable.from([Buffer.from('second')]), new TmpFileWriter(file, false))).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(file, 'utf8')).toBe('first');
  });

  it('writes an empty body as an empty file', async () => {
    const file = path.join(dir, 'empty');
    await pipeline(Readable.from([]), new TmpFileWriter(file, true));
    expect((await stat(file)).size).toBe(0);
  });

  it('stays whole for more uploads at once than there are batch buffers (the rest write chunk by chunk)', async () => {
    const count = BATCH_BUFFERS + 8;
    const bodies = Array.from({ length: count }, (_, i) => pieces([70_000, 65_536, WRITE_BATCH + i, 5]));
    await Promise.all(bodies.map((body, i) => pipeline(Readable.from(body), new TmpFileWriter(path.join(dir, `c${i}`), false))));
    for (const [i, body] of bodies.entries()) {
      expect((await readFile(path.join(dir, `c${i}`))).equals(Buffer.concat(body))).toBe(true);
    }
    expect(batchBuffersInUse()).toBe(0);
  });

  it('closes its file when destroyed mid-body, also with a write in flight, and gives its buffer back', async () => {
    for (let i = 0; i < BATCH_BUFFERS + 4; i++) {
      const out = new TmpFileWriter(path.join(dir, `d${i}`), true);
      const errors: Error[] = [];
      out.on('error', (err) => errors.push(err));
      out.write(randomBytes(WRITE_BATCH + 1));
      await new Promise((resolve) => setImmediate(resolve));
      out.destroy(new Error('client went away'));
      await new Promise((resolve) => out.once('close', resolve));
      expect(errors.map((e) => e.message)).toEqual(['client went away']);
    }
    // Every buffer came back; a new upload batches again (and writes whole).
    expect(batchBuffersInUse()).toBe(0);
    const body = pieces([WRITE_BATCH, WRITE_BATCH, 1]);
    await pipeline(Readable.from(body), new TmpFileWriter(path.join(dir, 'after'), false));
    expect((await readFile(path.join(dir, 'after'))).equals(Buffer.concat(body))).toBe(true);
  });
});
