import { describe, expect, it } from 'vitest';
import { capacityReader } from '../../src/disk/capacity.js';

describe('capacityReader (the s3 engine\'s "disk")', () => {
  it('reads total = capacity, free = capacity − committed − in flight, never below zero', async () => {
    let committed = 300;
    let inflight = 50;
    const read = capacityReader({ capacityBytes: 1000, committedBytes: async () => committed, inflightBytes: () => inflight });
    expect(await read()).toEqual({ totalBytes: 1000, freeBytes: 650 });
    committed = 900;
    inflight = 200;
    expect(await read()).toEqual({ totalBytes: 1000, freeBytes: 0 });
  });
});
