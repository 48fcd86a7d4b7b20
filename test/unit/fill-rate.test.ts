import { describe, expect, it } from 'vitest';
import { fitFillRate, type UsedSample } from '../../src/monitoring/fill-rate.js';
import { seededRandom } from '../helpers/seeded-random.js';

const GiB = 1024 ** 3;
const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = Date.UTC(2026, 10, 27, 0, 0);

/** Deterministic noise in [-1, 1). */
function noise(seed: number): () => number {
  const next = seededRandom(seed);
  return () => next() * 2 - 1;
}

/** One sample a minute for `minutes`, used bytes from `usedAt(minute)`. */
function series(minutes: number, usedAt: (minute: number) => number, start = T0): UsedSample[] {
  return Array.from({ length: minutes + 1 }, (_, m) => ({ atMs: start + m * MIN, usedBytes: Math.round(usedAt(m)) }));
}

describe('fitFillRate', () => {
  it('steady fill: rate and hours until the headroom is gone', () => {
    const samples = series(6 * 60, (m) => 50 * GiB + (m / 60) * GiB);
    const fit = fitFillRate(samples, 10 * GiB);
    expect(fit.bytesPerHour).toBe(GiB);
    expect(fit.hoursToFull).toBe(10);
  });

  it('steady fill with noise still predicts about the same', () => {
    const rand = noise(1);
    const samples = series(6 * 60, (m) => 50 * GiB + (m / 60) * 2 * GiB + rand() * 0.3 * GiB);
    const fit = fitFillRate(samples, 20 * GiB);
    expect(fit.bytesPerHour! / GiB).toBeCloseTo(2, 1);
    expect(fit.hoursToFull).toBeGreaterThan(9.5);
    expect(fit.hoursToFull).toBeLessThan(10.5);
  });

  it('no headroom left: full now (0 h)', () => {
    const fit = fitFillRate(series(120, (m) => 50 * GiB + m * 10e6), -5 * GiB);
    expect(fit.hoursToFull).toBe(0);
  });

  it('draining: a negative rate and no time to full', () => {
    const fit = fitFillRate(series(6 * 60, (m) => 80 * GiB - (m / 60) * GiB), 10 * GiB);
    expect(fit.bytesPerHour).toBe(-GiB);
    expect(fit.hoursToFull).toBeNull();
  });

  it('flat: zero rate and no time to full, with or without noise', () => {
    expect(fitFillRate(series(6 * 60, () => 70 * GiB), 10 * GiB)).toEqual({ bytesPerHour: 0, hoursToFull: null });
    const rand = noise(2);
    const noisy = fitFillRate(series(6 * 60, () => 70 * GiB + rand() * 2 * GiB), 10 * GiB);
    expect(noisy.hoursToFull).toBeNull();
  });

  it('a short noisy burst on a flat disk does not predict "full in 1 h"', () => {
    const rand = noise(3);
    // Flat with noise for 5 h 45 min, then 20 GiB written in 15 min; 25 GiB of headroom.
    const samples = series(6 * 60, (m) => 60 * GiB + rand() * 0.5 * GiB + (m > 345 ? Math.min(m - 345, 15) * (20 / 15) * GiB : 0));
    const fit = fitFillRate(samples, 25 * GiB);
    expect(fit.bytesPerHour).toBeGreaterThan(0);
    expect(fit.hoursToFull).toBeNull();
  });

  it('a one-hour burst that drains again predicts nothing', () => {
    const samples = series(6 * 60, (m) => 60 * GiB + (m >= 240 && m < 300 ? Math.min(m - 240, 300 - m) * 0.5 * GiB : 0));
    expect(fitFillRate(samples, 25 * GiB).hoursToFull).toBeNull();
  });

  it('too little history (10 minutes, or 5 samples) gives no rate at all', () => {
    expect(fitFillRate(series(10, (m) => 50 * GiB + m * GiB), 10 * GiB)).toEqual({ bytesPerHour: null, hoursToFull: null });
    const sparse = [0, 1, 2, 3, 4].map((h) => ({ atMs: T0 + h * HOUR, usedBytes: 50 * GiB + h * GiB }));
    expect(fitFillRate(sparse, 10 * GiB)).toEqual({ bytesPerHour: null, hoursToFull: null });
    expect(fitFillRate([], 10 * GiB)).toEqual({ bytesPerHour: null, hoursToFull: null });
  });

  it('only the window counts: an old fill followed by 6 h of flat is not filling', () => {
    const old = series(6 * 60, (m) => 10 * GiB + (m / 60) * 5 * GiB, T0 - 6 * HOUR);
    const flat = series(6 * 60, () => 40 * GiB, T0 + MIN);
    expect(fitFillRate([...old, ...flat], 10 * GiB)).toEqual({ bytesPerHour: 0, hoursToFull: null });
  });
});
