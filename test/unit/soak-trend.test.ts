import { describe, expect, it } from 'vitest';
import { trends, type Sample } from '../../bench/soak-trend.js';

const series = (n: number, f: (i: number) => Partial<Sample>): Sample[] =>
  Array.from({ length: n }, (_, i) => ({ atS: i * 5, rssMiB: 80, fds: 30, loopP99Ms: 12, tmpEntries: 2, usedPercent: 50, ...f(i) }));
const verdict = (samples: Sample[]) => Object.fromEntries(trends(samples).map((t) => [t.metric, t.ok]));

describe('soak trend verdict', () => {
  it('a flat or noisy series passes', () => {
    expect(verdict(series(40, (i) => ({ rssMiB: 80 + (i % 5), fds: 30 + (i % 3), tmpEntries: i % 6 })))).toEqual({ rssMiB: true, fds: true, loopP99Ms: true, tmpEntries: true });
  });

  it('warm-up growth (the first 15 %) does not count', () => {
    expect(verdict(series(40, (i) => ({ rssMiB: i < 6 ? 40 + i * 8 : 90 })))).toMatchObject({ rssMiB: true });
  });

  it('steady growth of RSS, fds, loop delay or tmp entries fails', () => {
    expect(verdict(series(40, (i) => ({ rssMiB: 80 + 3 * i })))).toMatchObject({ rssMiB: false });
    expect(verdict(series(40, (i) => ({ fds: 30 + i })))).toMatchObject({ fds: false });
    expect(verdict(series(40, (i) => ({ loopP99Ms: 12 + 2 * i })))).toMatchObject({ loopP99Ms: false });
    expect(verdict(series(40, (i) => ({ tmpEntries: Math.floor(i / 2) })))).toMatchObject({ tmpEntries: false });
  });
});
