/**
 * Human sizes and durations, parsed in one place.
 * Sizes: a number of bytes, or "512MiB", "5GiB", "10MB", "1.5 GB", "100k".
 * Durations: a number of seconds, or "90s", "15m", "1h", "7d", "500ms".
 */

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024, kb: 1000, kib: 1024,
  m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1000 ** 4, tib: 1024 ** 4,
};

const DURATION_UNITS_MS: Record<string, number> = {
  ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000,
};

/** Parses a size into bytes; throws a message naming the problem. */
export function parseSize(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`size must be a non-negative number of bytes, got ${value}`);
    return Math.floor(value);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = match ? SIZE_UNITS[(match[2] || 'b').toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new Error(`"${value}" is not a size (use bytes or e.g. 512MiB, 5GiB)`);
  return Math.floor(Number(match[1]) * unit);
}

/** Parses a duration into milliseconds; a bare number means seconds. */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`duration must be a non-negative number of seconds, got ${value}`);
    return Math.round(value * 1000);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/i.exec(value);
  if (!match) throw new Error(`"${value}" is not a duration (use seconds or e.g. 90s, 15m, 7d)`);
  return Math.round(Number(match[1]) * DURATION_UNITS_MS[(match[2] || 's').toLowerCase()]);
}

/** Formats bytes for people: 1.5 GiB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = Math.abs(bytes);
  let i = 0;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
  const text = i === 0 ? String(value) : value.toFixed(value < 10 ? 2 : 1);
  return `${bytes < 0 ? '-' : ''}${text} ${units[i]}`;
}
