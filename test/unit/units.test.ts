import { describe, expect, it } from 'vitest';
import { formatBytes, parseDuration, parseSize } from '../../src/config/units.js';

describe('parseSize', () => {
  it('reads bytes and binary/decimal units', () => {
    expect(parseSize(1024)).toBe(1024);
    expect(parseSize('512MiB')).toBe(512 * 1024 ** 2);
    expect(parseSize('5GiB')).toBe(5 * 1024 ** 3);
    expect(parseSize('10MB')).toBe(10_000_000);
    expect(parseSize('1.5 GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('100')).toBe(100);
  });
  it('refuses nonsense', () => {
    expect(() => parseSize('12XB')).toThrow(/not a size/);
    expect(() => parseSize(-1)).toThrow(/non-negative number of bytes, got -1/);
    expect(() => parseSize('GiB')).toThrow(/"GiB" is not a size/);
  });
});

describe('parseDuration', () => {
  it('reads seconds and units into milliseconds', () => {
    expect(parseDuration(90)).toBe(90_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('500ms')).toBe(500);
  });
  it('refuses nonsense', () => {
    expect(() => parseDuration('7 days')).toThrow(/not a duration/);
  });
});

describe('formatBytes', () => {
  it('formats for people', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.00 GiB');
  });
});
