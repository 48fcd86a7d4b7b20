import { describe, expect, it } from 'vitest';
import { UploadSizes } from '../../src/monitoring/upload-sizes.js';

describe('UploadSizes', () => {
  it('is the median of the declared sizes of the last hour; older ones drop out', () => {
    let now = 0;
    const sizes = new UploadSizes(() => now);
    expect(sizes.median()).toBeNull();
    for (const bytes of [10, 1_600_000, 1_600_000, 20]) sizes.note(bytes);
    expect(sizes.median()).toBe(800_010);
    sizes.note(1_700_000);
    expect(sizes.median()).toBe(1_600_000);
    now = 3_600_001;
    expect(sizes.median()).toBeNull();
    sizes.note(5);
    expect(sizes.median()).toBe(5);
  });

  it('keeps only the newest entries', () => {
    const sizes = new UploadSizes(() => 0, 3_600_000, 3);
    for (const bytes of [100, 100, 100, 1, 2, 3]) sizes.note(bytes);
    expect(sizes.median()).toBe(2);
  });
});
