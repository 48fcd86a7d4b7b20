import { describe, expect, it } from 'vitest';
import { alertList, alertsFor, formatAge, type AlertInput } from '../../src/monitoring/alerts.js';
import { RefusalLog } from '../../src/monitoring/refusal-log.js';

const GiB = 1024 ** 3;
const NOW = Date.UTC(2026, 10, 27, 4, 30);

/** A healthy node: nothing to say. Each test changes one thing. */
function healthy(): AlertInput {
  return {
    nowMs: NOW,
    disk: { totalBytes: 1000 * GiB, freeBytes: 600 * GiB, usedPercent: 40, reserveBytes: 50 * GiB, state: 'ok' },
    highWatermarkPercent: 85,
    lowWatermarkPercent: 75,
    fillRate: { bytesPerHour: 0, hoursToFull: null },
    tenants: [{ tenant: 'acme', bytes: 100 * GiB, growth24hBytes: 1 * GiB }, { tenant: 'globex', bytes: 50 * GiB, growth24hBytes: 0 }],
    totalGrowth24hBytes: 1 * GiB,
    refusals: { count: 0, byReason: {} },
    tmp: { files: 2, bytes: 1024, oldestSeconds: 30 },
    tmpMaxAgeMs: 3_600_000,
    lastEviction: { at: NOW - 600_000, error: null },
  };
}

describe('alertsFor', () => {
  it('says nothing when all is well', () => {
    expect(alertsFor(healthy())).toEqual([]);
  });

  it('critical disk: free space below the reserve, writes refused', () => {
    const input = healthy();
    input.disk = { ...input.disk, freeBytes: 1.2 * GiB, reserveBytes: 5 * GiB, usedPercent: 99.9, state: 'critical' };
    input.fillRate = { bytesPerHour: 3 * GiB, hoursToFull: 0 };
    // The "full in" sentence would repeat the critical one: only one is said.
    expect(alertsFor(input)).toEqual(['disk critical: 1.20 GiB free, below the 5.00 GiB reserve — writes refused']);
  });

  it('warning: between the watermarks', () => {
    const input = healthy();
    input.disk = { ...input.disk, usedPercent: 87.25, state: 'warning' };
    expect(alertsFor(input)).toEqual(['disk 87.3 % used (warning from 85 % until below 75 %) — evicting evictable classes']);
  });

  it('filling: hours to full and rate, only within 24 h', () => {
    const input = healthy();
    input.fillRate = { bytesPerHour: 3.1 * GiB, hoursToFull: 5.2 };
    expect(alertsFor(input)).toEqual(['disk full in 5.2 h at 3.10 GiB/h']);
    input.fillRate = { bytesPerHour: 0.1 * GiB, hoursToFull: 30 };
    expect(alertsFor(input)).toEqual([]);
  });

  it('refused writes in the last 15 minutes, with reasons', () => {
    const input = healthy();
    input.refusals = { count: 412, byReason: { quota_exceeded: 12, insufficient_storage: 400 } };
    expect(alertsFor(input)).toEqual(['412 writes refused in the last 15 min (insufficient_storage 400, quota_exceeded 12)']);
  });

  it('a tenant growing abnormally: share of growth; small or proportionate growth is not', () => {
    const input = healthy();
    input.tenants = [
      { tenant: 'acme', bytes: 60 * GiB, growth24hBytes: 41 * GiB },
      // grew a lot, but only 25 % of its size: business as usual
      { tenant: 'globex', bytes: 500 * GiB, growth24hBytes: 100 * GiB },
      // doubled, but tiny
      { tenant: 'initech', bytes: 2 * GiB, growth24hBytes: 1 * GiB },
      { tenant: 'new', bytes: 5 * GiB, growth24hBytes: null },
    ];
    input.totalGrowth24hBytes = 60 * GiB;
    expect(alertsFor(input)).toEqual(['tenant acme grew 41.0 GiB in 24 h (68 % of growth)']);
  });

  it('a stuck tmp file older than tmpMaxAge', () => {
    const input = healthy();
    input.tmp = { files: 3102, bytes: 1.5 * GiB, oldestSeconds: 5 * 3600 };
    expect(alertsFor(input)).toEqual(['tmp holds 3,102 files (1.50 GiB), the oldest 5 h old: uploads older than 1 h are not being swept']);
  });

  it('the last eviction run failed', () => {
    const input = healthy();
    input.lastEviction = { at: Date.UTC(2026, 10, 27, 4, 15), error: 'EACCES' };
    expect(alertsFor(input)).toEqual(['eviction failed at 04:15: EACCES']);
  });

  it('formats ages for people', () => {
    expect(formatAge(90_000)).toBe('2 min');
    expect(formatAge(5_400_000)).toBe('1.5 h');
    expect(formatAge(3 * 86_400_000)).toBe('3 d');
  });
});

describe('alertList: severities, critical first', () => {
  it('writes refused for everyone now or soon are critical; the rest are warnings, in their usual order', () => {
    const input = healthy();
    input.disk = { ...input.disk, usedPercent: 87.25, state: 'warning' };
    input.fillRate = { bytesPerHour: 3.1 * GiB, hoursToFull: 5.2 };
    input.refusals = { count: 3, byReason: { quota_exceeded: 3 } };
    input.tmp = { files: 1, bytes: 4096, oldestSeconds: 3 * 3600 };
    expect(alertList(input).map((a) => `${a.severity}: ${a.text.split(' ').slice(0, 3).join(' ')}`)).toEqual([
      'critical: disk full in',
      'warning: disk 87.3 %',
      'warning: 3 writes refused',
      'warning: tmp holds 1',
    ]);
    input.fillRate = { bytesPerHour: 0.5 * GiB, hoursToFull: 12 };
    input.refusals = { count: 3, byReason: { quota_exceeded: 1, insufficient_storage: 2 } };
    expect(alertList(input).map((a) => a.severity)).toEqual(['critical', 'warning', 'warning', 'warning']);
    expect(alertList(input)[0].text).toBe('3 writes refused in the last 15 min (insufficient_storage 2, quota_exceeded 1)');
    expect(alertsFor(input)).toEqual(alertList(input).map((a) => a.text));
  });

  it('a critical disk is critical and first', () => {
    const input = healthy();
    input.disk = { ...input.disk, freeBytes: 1.2 * GiB, reserveBytes: 5 * GiB, usedPercent: 99.9, state: 'critical' };
    input.lastEviction = { at: NOW, error: 'ENOSPC' };
    expect(alertList(input).map((a) => a.severity)).toEqual(['critical', 'warning']);
    expect(alertList(input)[0].text).toMatch(/^disk critical/);
  });
});

describe('RefusalLog (the "in the last 15 min" count)', () => {
  it('counts by reason and forgets refusals older than 15 minutes', () => {
    let now = NOW;
    const log = new RefusalLog(() => now);
    log.note('insufficient_storage');
    now += 5 * 60_000;
    log.note('insufficient_storage');
    log.note('quota_exceeded');
    expect(log.recent()).toEqual({ count: 3, byReason: { insufficient_storage: 2, quota_exceeded: 1 } });
    now += 11 * 60_000; // the first one is 16 min old now
    expect(log.recent()).toEqual({ count: 2, byReason: { insufficient_storage: 1, quota_exceeded: 1 } });
    now += 15 * 60_000;
    expect(log.recent()).toEqual({ count: 0, byReason: {} });
  });
});

describe('RefusalLog.writes (uploads and refusals over 15 min and 24 h)', () => {
  it('counts uploads by result and refusals by reason per window, and says since when', () => {
    let now = NOW;
    const log = new RefusalLog(() => now);
    log.noteUpload('created');
    log.noteUpload('refused');
    log.note('quota_exceeded');
    now += 3 * 3_600_000;
    log.noteUpload('created');
    log.noteUpload('exists');
    expect(log.writes(15 * 60_000)).toEqual({
      uploads: { created: 1, exists: 1, refused: 0, failed: 0 }, refused: { count: 0, byReason: {} }, sinceMs: now - 14 * 60_000 - (now % 60_000),
    });
    // Younger than the window: counted since the log began.
    expect(log.writes(24 * 3_600_000)).toEqual({
      uploads: { created: 2, exists: 1, refused: 1, failed: 0 }, refused: { count: 1, byReason: { quota_exceeded: 1 } }, sinceMs: NOW,
    });
    now += 22 * 3_600_000; // the first minute is 25 h old
    expect(log.writes(24 * 3_600_000).uploads).toEqual({ created: 1, exists: 1, refused: 0, failed: 0 });
  });
});
