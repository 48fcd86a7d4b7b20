import { describe, expect, it } from 'vitest';
import { UNFLUSHED_BYTES_PER_UPLOAD } from '../../src/disk/disk-guard.js';
import { WRITE_BUFFER } from '../../src/storage/fs-storage.js';
import { METER_BUFFER } from '../../src/upload/upload-meter.js';

/** The most a socket read hands the body at once (libuv's 64 KiB read buffer). */
const SOCKET_CHUNK = 64 << 10;

describe('upload buffers', () => {
  it('keep the disk guard margin above what an upload may have counted but not written', () => {
    // Meter (both sides) + write stream buffer + the write in flight (at most the buffer and a chunk) + a chunk in the parser.
    const unflushed = 2 * METER_BUFFER + WRITE_BUFFER + (WRITE_BUFFER + SOCKET_CHUNK) + SOCKET_CHUNK;
    expect(UNFLUSHED_BYTES_PER_UPLOAD).toBeGreaterThanOrEqual(unflushed);
  });

  it('stay small: an upload holds well under 1 MiB, so 64 at once fit in tens of MiB', () => {
    expect(2 * METER_BUFFER + WRITE_BUFFER).toBeLessThanOrEqual(128 << 10);
  });
});
