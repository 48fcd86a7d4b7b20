import { describe, expect, it } from 'vitest';
import {
  excessOf, selectVictims, type Candidate, type ClassRule, type EvictionPolicy,
} from '../../src/eviction/select-victims.js';

const MIN = 60_000;
const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 27, 12);

const cache: ClassRule = { evictable: true, maxAgeMs: null, maxIdleMs: null, maxBytes: null, maxBytesPerTenant: null };
const keep: ClassRule = { evictable: false, maxAgeMs: null, maxIdleMs: null, maxBytes: null, maxBytesPerTenant: null };

/** A file uploaded `ageMin` minutes ago and last read `idleMin` minutes ago. */
function file(name: string, opts: { tenant?: string; cls?: string; size?: number; ageMin?: number; idleMin?: number; expiresInMin?: number } = {}): Candidate {
  const ageMin = opts.ageMin ?? 60;
  return {
    name, tenant: opts.tenant ?? 'acme', class: opts.cls ?? 'cache', size: opts.size ?? 100,
    createdMs: NOW - ageMin * MIN, accessedMs: NOW - (opts.idleMin ?? ageMin) * MIN,
    expiresMs: opts.expiresInMin === undefined ? null : NOW + opts.expiresInMin * MIN,
  };
}

function policy(rules: Record<string, Partial<ClassRule>>, files: Candidate[] = [], overall = 0): EvictionPolicy {
  const map = new Map(Object.entries(rules).map(([name, r]) => [name, { ...(name === 'default' ? keep : cache), ...r }]));
  const totals = new Map<string, { tenant: string; class: string; bytes: number }>();
  for (const f of files) {
    const key = `${f.tenant}/${f.class}`;
    const t = totals.get(key) ?? { tenant: f.tenant, class: f.class, bytes: 0 };
    t.bytes += f.size;
    totals.set(key, t);
  }
  return { rules: map, excess: excessOf(map, totals.values(), overall) };
}

const names = (p: EvictionPolicy, files: Candidate[], now = NOW) => selectVictims(files, p, now).victims.map((v) => `${v.name}:${v.reason}`);

describe('selectVictims', () => {
  it('removes files older than maxAge, counted from the upload, whatever their reads', () => {
    const files = [file('old', { ageMin: 31 * 24 * 60, idleMin: 1 }), file('young', { ageMin: 29 * 24 * 60 })];
    expect(names(policy({ cache: { maxAgeMs: 30 * DAY } }), files)).toEqual(['old:max-age']);
  });

  it('removes files not read for maxIdle; the clock decides, not the order', () => {
    const files = [file('idle', { ageMin: 600, idleMin: 8 * 24 * 60 }), file('read', { ageMin: 9 * 24 * 60, idleMin: 10 })];
    const p = policy({ cache: { maxIdleMs: 7 * DAY } });
    expect(names(p, files)).toEqual(['idle:max-idle']);
    // A day later than the read file's last read + 7 d, it goes too.
    expect(names(p, files, NOW + 7 * DAY)).toEqual(['idle:max-idle', 'read:max-idle']);
  });

  it('removes expired files (X-Expire-After) of every class, even non-evictable ones, and nothing before expiry', () => {
    const files = [
      file('cache-expired', { expiresInMin: -1 }), file('default-expired', { cls: 'default', expiresInMin: 0 }),
      file('default-later', { cls: 'default', expiresInMin: 5 }),
    ];
    expect(names(policy({ cache: {}, default: {} }), files)).toEqual(['cache-expired:expired', 'default-expired:expired']);
  });

  it('brings a class total under maxBytes, least recently used first across tenants', () => {
    const files = [
      file('a1', { tenant: 'a', idleMin: 50 }), file('b1', { tenant: 'b', idleMin: 40 }),
      file('a2', { tenant: 'a', idleMin: 30 }), file('b2', { tenant: 'b', idleMin: 5 }),
    ];
    const p = policy({ cache: { maxBytes: 250 } }, files);
    expect(names(p, files)).toEqual(['a1:class-quota', 'b1:class-quota']);
  });

  it('brings each tenant under maxBytesPerTenant from its own files only', () => {
    const files = [
      file('a1', { tenant: 'a', idleMin: 50 }), file('a2', { tenant: 'a', idleMin: 10 }), file('a3', { tenant: 'a', idleMin: 5 }),
      file('b1', { tenant: 'b', idleMin: 90 }), file('b2', { tenant: 'b', idleMin: 80 }),
    ];
    const p = policy({ cache: { maxBytesPerTenant: 200 } }, files);
    const selection = selectVictims(files, p, NOW);
    expect(selection.victims.map((v) => v.name)).toEqual(['a1']);
    expect([...selection.excess.byTenantClass.values()].every((v) => v <= 0)).toBe(true);
  });

  it('frees an overall amount least recently used first, larger files counting for more', () => {
    const files = [file('big-old', { size: 500, idleMin: 60 }), file('small', { size: 10, idleMin: 30 }), file('new', { idleMin: 1 })];
    const p = { ...policy({ cache: {} }, files, 505), overallReason: 'low-disk' as const };
    expect(names(p, files)).toEqual(['big-old:low-disk', 'small:low-disk']);
  });

  it('counts files removed by a rule against the size limits, so nothing more goes than needed', () => {
    const files = [file('lru', { idleMin: 100 }), file('aged', { ageMin: 40 * 24 * 60, idleMin: 1 })];
    const p = policy({ cache: { maxAgeMs: 30 * DAY, maxBytesPerTenant: 100 } }, files);
    expect(names(p, files)).toEqual(['aged:max-age']);
  });

  it('never chooses a file of a non-evictable class for age, idle or size', () => {
    const files = [file('d1', { cls: 'default', ageMin: 99 * 24 * 60 }), file('d2', { cls: 'default', size: 10_000 })];
    const p = policy({ default: { maxAgeMs: DAY, maxIdleMs: DAY, maxBytes: 1, maxBytesPerTenant: 1 } }, files, 1_000_000);
    expect(names(p, files)).toEqual([]);
  });

  it('orders by last read, ties by older upload, then by name, whatever the input order', () => {
    const files = [
      file('c', { ageMin: 10, idleMin: 5 }), file('b', { ageMin: 20, idleMin: 5 }), file('a', { ageMin: 20, idleMin: 5 }),
      file('z', { ageMin: 30, idleMin: 6 }),
    ];
    const expected = ['z', 'a', 'b', 'c'];
    for (const input of [files, [...files].reverse(), [files[2], files[0], files[3], files[1]]]) {
      const p = { ...policy({ cache: {} }, input, 10_000), overallReason: 'max-bytes' as const };
      expect(selectVictims(input, p, NOW).victims.map((v) => v.name)).toEqual(expected);
    }
  });

  it('chooses nothing when no limit is exceeded', () => {
    const files = [file('a'), file('b')];
    expect(names(policy({ cache: { maxAgeMs: DAY, maxIdleMs: DAY, maxBytes: 1000, maxBytesPerTenant: 1000 } }, files), files)).toEqual([]);
  });
});
