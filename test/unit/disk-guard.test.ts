import { describe, expect, it } from 'vitest';
import { DiskGuard, type DiskGuardOptions, type DiskState } from '../../src/disk/disk-guard.js';
import { diskStateOf } from '../../src/disk/disk-state.js';
import type { HttpError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import type { DiskReading } from '../../src/disk/statfs.js';
import { fakeDisk } from '../helpers/test-node.js';
import { refusal } from '../helpers/refusal.js';

const MiB = 1 << 20;

/** A logger that records (level, message) pairs. */
function recordingLogger(): Logger & { lines: [string, string][] } {
  const lines: [string, string][] = [];
  const at = (level: string) => (message: string) => { lines.push([level, message]); };
  return { lines, log: (level: string, message: string) => { lines.push([level, message]); }, error: at('error'), warn: at('warn'), info: at('info') } as unknown as Logger & { lines: [string, string][] };
}

function guardOn(disk: () => Promise<DiskReading>, options: Partial<DiskGuardOptions> = {}) {
  let now = 1_000_000;
  const logger = recordingLogger();
  let reads = 0;
  const guard = new DiskGuard({
    readDisk: async () => { reads++; return disk(); },
    now: () => now,
    logger,
    minFreeBytes: 10 * MiB,
    minFreePercent: 0,
    highWatermarkPercent: 85,
    lowWatermarkPercent: 75,
    ...options,
  });
  return { guard, logger, reads: () => reads, advance: (ms: number) => { now += ms; } };
}

describe('reserve = max(minFreeBytes, minFreePercent of the disk)', () => {
  it('takes the bytes when they are larger', async () => {
    const { guard } = guardOn(fakeDisk(100 * MiB, 50 * MiB), { minFreeBytes: 10 * MiB, minFreePercent: 5 });
    expect((await guard.refresh()).reserveBytes).toBe(10 * MiB);
  });

  it('takes the percent when it is larger (rounded up to a byte)', async () => {
    const { guard } = guardOn(fakeDisk(1000 * MiB + 7, 500 * MiB), { minFreeBytes: 10 * MiB, minFreePercent: 5 });
    expect((await guard.refresh()).reserveBytes).toBe(Math.ceil(0.05 * (1000 * MiB + 7)));
  });
});

describe('admission: free − reservedInFlight − incoming ≥ reserve', () => {
  it('admits up to the reserve exactly and refuses one byte more with 507 details', async () => {
    const { guard } = guardOn(fakeDisk(200 * MiB, 100 * MiB));
    const fits = await guard.admit(90 * MiB);
    fits.release();
    const err = await refusal(guard.admit(90 * MiB + 1));
    expect(err.code).toBe('insufficient_storage');
    expect(err.status).toBe(507);
    expect(err.headers['Retry-After']).toMatch(/^\d+$/);
    expect(err.details).toMatchObject({ freeBytes: 100 * MiB, requiredBytes: 90 * MiB + 1 + 10 * MiB, reserveBytes: 10 * MiB });
    expect(err.message).toMatch(/100.0 MiB free, 10.0 MiB kept in reserve/);
    expect(err.message).toMatch(/nanocdn cleanup/);
  });

  it('counts what uploads in flight hold', async () => {
    const { guard } = guardOn(fakeDisk(200 * MiB, 100 * MiB));
    const first = await guard.admit(60 * MiB);
    const err = await refusal(guard.admit(31 * MiB));
    expect(err.details).toMatchObject({ freeBytes: 100 * MiB, requiredBytes: 31 * MiB + 10 * MiB + 60 * MiB });
    expect((await guard.admit(30 * MiB)).reserved).toBe(30 * MiB);
    first.release();
  });

  it('concurrent admissions cannot overshoot the reserve together', async () => {
    const { guard } = guardOn(fakeDisk(200 * MiB, 110 * MiB));
    const results = await Promise.allSettled(Array.from({ length: 25 }, () => guard.admit(7 * MiB)));
    const admitted = results.filter((r) => r.status === 'fulfilled');
    expect(admitted).toHaveLength(Math.floor(100 / 7));
    for (const r of results) if (r.status === 'rejected') expect((r.reason as HttpError).code).toBe('insufficient_storage');
    const snap = guard.snapshot();
    expect(snap.freeBytes - snap.reservedBytes).toBeGreaterThanOrEqual(snap.reserveBytes);
    expect(snap.uploads).toBe(admitted.length);
  });

  it('a chunked upload reserves one step and grows in steps; it is cut with 507 when the next step does not fit', async () => {
    const { guard } = guardOn(fakeDisk(100 * MiB, 13 * MiB + 1000));
    const r = await guard.admit(null);
    expect(r.reserved).toBe(MiB);
    r.wrote(MiB - 10);
    expect(r.reserved).toBe(MiB);
    r.wrote(20);
    expect(r.reserved).toBe(2 * MiB);
    r.wrote(MiB);
    expect(r.reserved).toBe(3 * MiB);
    expect(r.written).toBe(2 * MiB + 10);
    // 13 MiB free − 10 MiB reserve: a 4th step does not fit.
    const err = await refusal(() => r.wrote(MiB));
    expect(err.code).toBe('insufficient_storage');
    expect(err.message).toMatch(/grew past the room left/);
    expect(r.written).toBe(2 * MiB + 10);
    r.release();
    expect(guard.snapshot().reservedBytes).toBe(0);
  });
});

describe('reservations are finished exactly once', () => {
  it('release twice, or commit then release, counts once', async () => {
    const { guard } = guardOn(fakeDisk(200 * MiB, 100 * MiB));
    const a = await guard.admit(40 * MiB);
    const b = await guard.admit(40 * MiB);
    a.release();
    a.release();
    a.commit();
    expect(guard.snapshot()).toMatchObject({ reservedBytes: 40 * MiB, uploads: 1 });
    b.wrote(MiB);
    b.commit();
    b.release();
    expect(guard.snapshot()).toMatchObject({ reservedBytes: 0, uploads: 0, freeBytes: 99 * MiB });
    expect(() => b.wrote(1)).toThrow(/after the reservation was finished/);
  });

  it('a released (failed, aborted) upload frees what it held and makes the next admission read statfs again', async () => {
    const disk = fakeDisk(200 * MiB, 100 * MiB);
    const { guard, reads } = guardOn(disk);
    const r = await guard.admit(50 * MiB);
    r.wrote(20 * MiB);
    expect(guard.snapshot().freeBytes).toBe(80 * MiB);
    r.release();
    expect(guard.snapshot()).toMatchObject({ freeBytes: 100 * MiB, reservedBytes: 0 });
    const before = reads();
    (await guard.admit(1)).release();
    expect(reads()).toBe(before + 1);
  });
});

describe('the cached reading, corrected by this process', () => {
  it('re-reads statfs only when the reading is older than maxReadingAgeMs', async () => {
    const { guard, reads, advance } = guardOn(fakeDisk(200 * MiB, 100 * MiB), { maxReadingAgeMs: 1000 });
    await guard.refresh();
    await guard.refresh();
    advance(999);
    (await guard.admit(1)).release();
    expect(reads()).toBe(1);
    advance(1);
    await guard.refresh();
    expect(reads()).toBe(2);
  });

  it('counts writes between readings; a stored file stays counted until a reading that started after it', async () => {
    const disk = fakeDisk(200 * MiB, 100 * MiB);
    const { guard, advance } = guardOn(disk, { unflushedBytesPerUpload: 0 });
    const r = await guard.admit(10 * MiB);
    r.wrote(4 * MiB);
    expect(guard.snapshot()).toMatchObject({ freeBytes: 96 * MiB, reservedBytes: 6 * MiB });
    r.wrote(6 * MiB);
    r.commit();
    expect(guard.snapshot()).toMatchObject({ freeBytes: 90 * MiB, reservedBytes: 0 });
    // The disk now shows the file; a new reading replaces the correction instead of adding to it.
    disk.free = 90 * MiB;
    advance(1000);
    expect(await guard.refresh()).toMatchObject({ freeBytes: 90 * MiB, reservedBytes: 0 });
  });

  it('a reading taken while an upload finishes does not forget its bytes', async () => {
    let resolveRead!: (r: DiskReading) => void;
    let slow = false;
    const base = fakeDisk(200 * MiB, 100 * MiB);
    const { guard } = guardOn(() => (slow ? new Promise<DiskReading>((resolve) => { resolveRead = resolve; }) : base()), { unflushedBytesPerUpload: 0 });
    const r = await guard.admit(10 * MiB);
    slow = true;
    const reading = guard.refresh(true);
    r.wrote(10 * MiB);
    r.commit();
    resolveRead({ totalBytes: 200 * MiB, freeBytes: 100 * MiB }); // statfs ran before the bytes landed
    expect((await reading).freeBytes).toBe(90 * MiB);
  });

  it('trusts a reading with a live upload\'s bytes only beyond the unflushed margin', async () => {
    const disk = fakeDisk(200 * MiB, 100 * MiB);
    const { guard } = guardOn(disk, { unflushedBytesPerUpload: 2 * MiB });
    const r = await guard.admit(20 * MiB);
    r.wrote(8 * MiB);
    disk.free = 93 * MiB; // only 7 MiB reached the disk when statfs ran
    const snap = await guard.refresh(true);
    // Best estimate assumes the 8 MiB are in the reading; the margin keeps 2 MiB held in case they are not.
    expect(snap.freeBytes).toBe(93 * MiB);
    expect(snap.reservedBytes).toBe(12 * MiB + 2 * MiB);
    // Admission: 93 − 14 − 10 = 69 MiB of room.
    (await guard.admit(69 * MiB)).release();
    await refusal(guard.admit(69 * MiB + 1));
    r.release();
  });

  it('a free (delete, sweep) makes the next admission read statfs again, even within the cache age', async () => {
    const disk = fakeDisk(200 * MiB, 20 * MiB);
    const { guard, reads } = guardOn(disk);
    await refusal(guard.admit(15 * MiB));
    disk.free = 40 * MiB;
    await refusal(guard.admit(15 * MiB)); // cached: the free is not known yet
    guard.noteFreed();
    const r = await guard.admit(15 * MiB);
    expect(reads()).toBe(2);
    r.release();
  });

  it('keeps the last reading when statfs fails, and says 503 when there never was one', async () => {
    let fail = false;
    const base = fakeDisk(200 * MiB, 100 * MiB);
    const { guard, advance, logger } = guardOn(async () => { if (fail) throw new Error('EIO'); return base(); });
    await guard.refresh();
    fail = true;
    advance(5000);
    expect((await guard.refresh()).freeBytes).toBe(100 * MiB);
    advance(5000);
    await guard.refresh();
    expect(logger.lines.filter(([, m]) => m === 'cannot read free disk space')).toHaveLength(1);
    const { guard: blind } = guardOn(async () => { throw new Error('EIO'); });
    expect((await refusal(blind.admit(1))).code).toBe('store_unavailable');
  });
});

describe('watermark state', () => {
  it('diskStateOf: critical inside the reserve, warning from the high mark until below the low mark', () => {
    const marks = { highWatermarkPercent: 85, lowWatermarkPercent: 75 };
    const at = (usedPercent: number, freeBytes = 100, reserveBytes = 10) => ({ usedPercent, freeBytes, reserveBytes });
    expect(diskStateOf('ok', at(84.9), marks)).toBe('ok');
    expect(diskStateOf('ok', at(85), marks)).toBe('warning');
    expect(diskStateOf('warning', at(80), marks)).toBe('warning');
    expect(diskStateOf('warning', at(74.9), marks)).toBe('ok');
    expect(diskStateOf('ok', at(50, 9, 10), marks)).toBe('critical');
    expect(diskStateOf('critical', at(80), marks)).toBe('warning');
    expect(diskStateOf('critical', at(70), marks)).toBe('ok');
  });

  it('moves ok → warning → critical → warning → ok, emitting and logging each change once', async () => {
    const disk = fakeDisk(100 * MiB, 50 * MiB);
    const { guard, logger } = guardOn(disk);
    const seen: DiskState[] = [];
    guard.on('state', (state) => seen.push(state));
    const step = async (free: number) => { disk.free = free * MiB; await guard.refresh(true); await guard.refresh(true); guard.snapshot(); };
    await step(50);
    await step(14); // 86 % used
    await step(9); // inside the 10 MiB reserve
    await step(9);
    await step(20); // 80 %: between the marks, still warning
    await step(30); // 70 %
    expect(seen).toEqual(['warning', 'critical', 'warning', 'ok']);
    expect(guard.currentState).toBe('ok');
    expect(logger.lines.filter(([, m]) => m.startsWith('disk state')).map(([level, m]) => `${level} ${m}`)).toEqual([
      'warn disk state ok -> warning', 'error disk state warning -> critical', 'warn disk state critical -> warning', 'info disk state warning -> ok',
    ]);
  });

  it('this process\'s own writes can move the state before the next reading', async () => {
    const { guard } = guardOn(fakeDisk(100 * MiB, 50 * MiB));
    const r = await guard.admit(40 * MiB);
    r.wrote(36 * MiB);
    expect(guard.currentState).toBe('ok');
    r.commit();
    expect(guard.currentState).toBe('warning');
  });
});
