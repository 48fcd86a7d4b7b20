import { describe, expect, it } from 'vitest';
import { UNFLUSHED_BYTES_PER_UPLOAD } from '../../src/disk/disk-guard.js';
import { BATCH_BUFFERS, WRITE_BATCH, WRITE_HWM } from '../../src/storage/tmp-file.js';
import { METER_BUFFER } from '../../src/upload/upload-meter.js';

/** The most a socket read hands the body at once (libuv's 64 KiB read buffer). */
const SOCKET_CHUNK = 64 << 10;

describe('upload buffers', () => {
  it('keep the disk guard margin above what an upload may have counted but not written', () => {
    // Meter (both sides) + the batch being filled or written + the tmp file's writable buffer (its mark and a chunk) + a chunk in the parser.
    const unflushed = 2 * METER_BUFFER + WRITE_BATCH + (WRITE_HWM + SOCKET_CHUNK) + SOCKET_CHUNK;
    expect(UNFLUSHED_BYTES_PER_UPLOAD).toBeGreaterThanOrEqual(unflushed);
  });

  it('stay small: an upload holds under 256 KiB of buffers, so 64 at once fit in 16 MiB', () => {
    expect(2 * METER_BUFFER + WRITE_BATCH + WRITE_HWM).toBeLessThanOrEqual(256 << 10);
  });

  it('bound the batch buffers of a process: 2 MiB however many uploads are in flight', () => {
    expect(BATCH_BUFFERS * WRITE_BATCH).toBeLessThanOrEqual(2 << 20);
  });
});
