import { afterEach, describe, expect, it, vi } from 'vitest';
import { EvictionScheduler } from '../../src/eviction/scheduler.js';
import type { Evictor } from '../../src/eviction/evictor.js';
import type { TmpSweeper } from '../../src/storage/tmp-sweeper.js';
import { silentLogger } from '../../src/logger.js';

/** A scheduler every second whose pass takes `passMs`; counts passes started and the most at once. */
function every(passMs: number) {
  const seen = { passes: 0, running: 0, most: 0, sweeps: 0 };
  const evictor = {
    run: async () => {
      seen.passes++;
      seen.most = Math.max(seen.most, ++seen.running);
      await new Promise((r) => setTimeout(r, passMs));
      seen.running--;
      return {};
    },
  } as unknown as Evictor;
  const sweeper = { sweep: () => { seen.sweeps++; return Promise.resolve({ files: 0, bytes: 0 }); } } as unknown as TmpSweeper;
  return { seen, scheduler: new EvictionScheduler('* * * * * *', evictor, sweeper, silentLogger()) };
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('eviction scheduler (croner)', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    vi.restoreAllMocks();
  });

  it('runs the sweep and the pass on schedule, tells the next run, and builds no Intl formatter (its ICU data cost the idle node ~8 MB)', async () => {
    const formatters = vi.spyOn(Intl, 'DateTimeFormat');
    const { seen, scheduler } = every(0);
    stop = () => scheduler.stop();
    expect(scheduler.nextRun()).toBeNull();
    scheduler.start();
    const next = scheduler.nextRun();
    expect(next).toBeInstanceOf(Date);
    expect(next!.getTime()).toBeGreaterThan(Date.now() - 1);
    await until('two scheduled passes', () => seen.passes >= 2);
    expect(seen.sweeps).toBeGreaterThanOrEqual(2);
    expect(formatters).not.toHaveBeenCalled();
    await scheduler.stop();
    expect(scheduler.nextRun()).toBeNull();
    const passes = seen.passes;
    await new Promise((r) => setTimeout(r, 1500));
    expect(seen.passes).toBe(passes);
  });

  it('never starts a pass while the last one still runs (a pass longer than the interval skips ticks)', async () => {
    const { seen, scheduler } = every(2500);
    stop = () => scheduler.stop();
    scheduler.start();
    await until('two passes', () => seen.passes >= 2, 15_000);
    expect(seen.most).toBe(1);
  });
});
