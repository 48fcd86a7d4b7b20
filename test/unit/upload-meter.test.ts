import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { DiskGuard } from '../../src/disk/disk-guard.js';
import { HttpError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { UploadMeter } from '../../src/upload/upload-meter.js';
import { fakeDisk } from '../helpers/test-node.js';

const MiB = 1 << 20;

function guard(freeBytes: number): DiskGuard {
  return new DiskGuard({
    readDisk: fakeDisk(1000 * MiB, freeBytes), now: () => 0, logger: silentLogger(),
    minFreeBytes: 10 * MiB, minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100,
  });
}

/** Runs chunks through the meter into a sink; returns what reached the sink and the error, if any. */
async function run(meter: UploadMeter, chunks: Buffer[]): Promise<{ received: number; error?: HttpError }> {
  let received = 0;
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { received += chunk.length; done(); } });
  try {
    await pipeline(Readable.from(chunks), meter, sink);
    return { received };
  } catch (err) {
    return { received, error: err as HttpError };
  }
}

describe('UploadMeter', () => {
  it('ends the body only once its hold is decided (a clustered worker\'s disk spare): a refusal then fails it, an admission lets it end', async () => {
    for (const verdict of ['refused', 'admitted'] as const) {
      let decide!: () => void;
      const decision = new Promise<void>((resolve, reject) => {
        decide = verdict === 'admitted' ? resolve : () => reject(new HttpError('rate_limited'));
      });
      const meter = new UploadMeter({ maxBytes: MiB, hold: { wrote: () => undefined, decided: () => decision } });
      let ended = false;
      meter.on('end', () => { ended = true; });
      const running = run(meter, [randomBytes(1000), randomBytes(1000)]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      // Every byte went through; the end waits.
      expect(meter.bytes).toBe(2000);
      expect(ended).toBe(false);
      decide();
      const { error } = await running;
      expect(error?.code).toBe(verdict === 'refused' ? 'rate_limited' : undefined);
      expect(ended).toBe(verdict === 'admitted');
    }
  });

  it('counts and hashes what passes, and counts it against the reservation', async () => {
    const g = guard(100 * MiB);
    const reservation = await g.admit(3 * MiB);
    const chunks = [randomBytes(MiB), randomBytes(MiB), randomBytes(MiB)];
    const meter = new UploadMeter({ maxBytes: 10 * MiB, hold: reservation });
    expect(() => meter.sha256).toThrow(/before the body ended/);
    const { received, error } = await run(meter, chunks);
    expect(error).toBeUndefined();
    expect(received).toBe(3 * MiB);
    expect(meter.bytes).toBe(3 * MiB);
    expect(reservation.written).toBe(3 * MiB);
    expect(meter.sha256).toBe(createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
    reservation.commit();
  });

  it('stops at the size limit with 413 before handing on the chunk that crosses it', async () => {
    const reservation = await guard(100 * MiB).admit(null);
    const meter = new UploadMeter({ maxBytes: 1000, hold: reservation });
    const { received, error } = await run(meter, [randomBytes(600), randomBytes(600)]);
    expect(error?.code).toBe('upload_too_large');
    expect(received).toBeLessThanOrEqual(1000);
    expect(reservation.written).toBe(600);
    reservation.release();
  });

  it('grows a chunked reservation in steps and cuts the body with 507 when the next step does not fit', async () => {
    const reservation = await guard(12 * MiB + 100).admit(null); // room for 2 MiB above the 10 MiB reserve
    const meter = new UploadMeter({ maxBytes: 100 * MiB, hold: reservation });
    const { received, error } = await run(meter, Array.from({ length: 8 }, () => randomBytes(MiB / 2)));
    expect(error?.code).toBe('insufficient_storage');
    expect(error?.status).toBe(507);
    expect(reservation.written).toBe(2 * MiB);
    expect(received).toBeLessThanOrEqual(2 * MiB);
    reservation.release();
  });

  it('verifies X-Checksum-SHA256 before the end is handed on', async () => {
    const body = randomBytes(5000);
    const good = createHash('sha256').update(body).digest('hex');
    const g = guard(100 * MiB);
    const ok = await g.admit(5000);
    expect((await run(new UploadMeter({ maxBytes: MiB, hold: ok, expectedSha256: good }), [body])).error).toBeUndefined();
    ok.commit();
    const bad = await g.admit(5000);
    const { error } = await run(new UploadMeter({ maxBytes: MiB, hold: bad, expectedSha256: '0'.repeat(64) }), [body]);
    expect(error?.code).toBe('checksum_mismatch');
    expect(error?.details).toMatchObject({ expectedSha256: '0'.repeat(64), actualSha256: good });
    bad.release();
  });
});
