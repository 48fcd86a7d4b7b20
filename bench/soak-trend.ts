/**
 * The soak's verdict (bench/soak.ts): does a sampled figure keep growing?
 * The first 15 % of the samples are warm-up; the mean of the last third of
 * the rest may exceed the mean of the first third by `ratio` and `slack`.
 */

/** One sample of the node under load. */
export interface Sample { atS: number; rssMiB: number; fds: number; loopP99Ms: number; tmpEntries: number; usedPercent: number }

/** Growth limits: the last third's mean may exceed the first third's by `ratio` and `slack` together. */
export const LIMITS: Record<'rssMiB' | 'fds' | 'loopP99Ms' | 'tmpEntries', { ratio: number; slack: number }> = {
  rssMiB: { ratio: 0.25, slack: 24 },
  fds: { ratio: 0.25, slack: 10 },
  loopP99Ms: { ratio: 0.5, slack: 25 },
  // Uploads in flight (6 soak workers) each hold one entry.
  tmpEntries: { ratio: 0, slack: 8 },
};

export interface Trend { metric: string; first: number; last: number; limit: number; ok: boolean }

/** The trend verdict over samples (the first 15 % are warm-up). */
export function trends(samples: Sample[]): Trend[] {
  const warm = samples.slice(Math.floor(samples.length * 0.15));
  const third = Math.max(1, Math.floor(warm.length / 3));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return (Object.keys(LIMITS) as (keyof typeof LIMITS)[]).map((metric) => {
    const first = mean(warm.slice(0, third).map((s) => s[metric]));
    const last = mean(warm.slice(-third).map((s) => s[metric]));
    const limit = first * (1 + LIMITS[metric].ratio) + LIMITS[metric].slack;
    return { metric, first: Number(first.toFixed(2)), last: Number(last.toFixed(2)), limit: Number(limit.toFixed(2)), ok: last <= limit };
  });
}

