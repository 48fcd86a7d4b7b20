import { describe, expect, it } from 'vitest';
import { Pacer, type PacerClock } from '../../src/scrub/pacer.js';

/** A clock that only moves when the pacer sleeps (or the test reads). */
function fakeClock(): PacerClock & { t: number; slept: number[] } {
  const clock = {
    t: 0, slept: [] as number[],
    now: () => clock.t,
    sleep: async (ms: number) => { clock.slept.push(ms); clock.t += ms; },
  };
  return clock;
}

describe('Pacer (the scrub read rate)', () => {
  it('waits until the bytes read so far are due at the rate', async () => {
    const clock = fakeClock();
    const pacer = new Pacer(1_000_000, clock);
    await pacer.take(500_000);
    expect(clock.slept).toEqual([500]);
    await pacer.take(250_000);
    expect(clock.slept).toEqual([500, 250]);
    expect(clock.t).toBe(750);
  });

  it('does not wait for a reader that is behind (a slow disk), nor let it burst past the rate later', async () => {
    const clock = fakeClock();
    const pacer = new Pacer(1_000_000, clock);
    clock.t = 2000; // reading 1 MB took 2 s
    await pacer.take(1_000_000);
    expect(clock.slept).toEqual([]);
    await pacer.take(2_000_000); // 3 MB due at 3 s
    expect(clock.slept).toEqual([1000]);
  });

  it('no limit (null or 0) never waits', async () => {
    for (const rate of [null, 0]) {
      const clock = fakeClock();
      const pacer = new Pacer(rate, clock);
      await pacer.take(10 ** 9);
      expect(clock.slept).toEqual([]);
    }
  });
});
