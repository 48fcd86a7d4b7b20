/** One reading of the disk's used space. */
export interface UsedSample {
  atMs: number;
  usedBytes: number;
}

/** How fast the disk fills, from a linear fit over recent samples. */
export interface FillRate {
  /** Slope of the fit (negative while draining); null without enough history. */
  bytesPerHour: number | null;
  /** Hours until free space reaches the write reserve; null when not filling (or the fit is not trustworthy). */
  hoursToFull: number | null;
}

export interface FillRateOptions {
  /** Samples older than this (before the newest) are ignored. Default 6 h. */
  windowMs?: number;
  /** The samples used must span at least this long. Default 1 h. */
  minSpanMs?: number;
  /** At least this many samples. Default 10. */
  minSamples?: number;
  /** Minimum coefficient of determination (R²) of the fit before it predicts anything. Default 0.5. */
  minR2?: number;
}

const HOUR_MS = 3_600_000;

/**
 * Ordinary least squares of used bytes over time on the last `windowMs`.
 * A prediction needs a long enough span, enough samples, a positive slope and
 * a fit that explains most of the variance (R²): a short burst, or noise
 * around a flat line, bends the slope but explains little, so it does not
 * turn into "full in 1 h". `headroomBytes` is what is left before writes
 * are refused (free − reserve).
 */
export function fitFillRate(samples: readonly UsedSample[], headroomBytes: number, options: FillRateOptions = {}): FillRate {
  const windowMs = options.windowMs ?? 6 * HOUR_MS;
  const minSpanMs = options.minSpanMs ?? HOUR_MS;
  const minSamples = options.minSamples ?? 10;
  const minR2 = options.minR2 ?? 0.5;
  if (samples.length === 0) return { bytesPerHour: null, hoursToFull: null };

  const newest = samples.reduce((max, s) => Math.max(max, s.atMs), -Infinity);
  const recent = samples.filter((s) => s.atMs >= newest - windowMs);
  const oldest = recent.reduce((min, s) => Math.min(min, s.atMs), Infinity);
  if (recent.length < minSamples || newest - oldest < minSpanMs) return { bytesPerHour: null, hoursToFull: null };

  // Centre x and y: keeps epoch-millisecond and terabyte magnitudes precise.
  const n = recent.length;
  const meanX = recent.reduce((sum, s) => sum + s.atMs, 0) / n;
  const meanY = recent.reduce((sum, s) => sum + s.usedBytes, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (const s of recent) {
    const dx = s.atMs - meanX;
    const dy = s.usedBytes - meanY;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  const slopePerMs = sxx === 0 ? 0 : sxy / sxx;
  const bytesPerHour = Math.round(slopePerMs * HOUR_MS);
  // A perfectly flat series has syy = 0: no variance to explain, and no fill.
  const r2 = syy === 0 ? 0 : (sxy * sxy) / (sxx * syy);
  if (bytesPerHour <= 0 || r2 < minR2) return { bytesPerHour, hoursToFull: null };
  const hoursToFull = Math.max(0, headroomBytes) / bytesPerHour;
  return { bytesPerHour, hoursToFull: Math.round(hoursToFull * 100) / 100 };
}
