import { setTimeout as sleep } from 'node:timers/promises';

/** The clock a Pacer reads and waits on (tests pass a fake one). */
export interface PacerClock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: PacerClock = { now: () => performance.now(), sleep: (ms) => sleep(ms) };

/**
 * Holds a reader to `bytesPerSecond` on average (docs/design.md §10, scrub):
 * after each chunk it waits until the bytes read so far are due. A reader
 * that falls behind (a slow disk) is never made to wait; it does not catch up
 * with bursts either, because the due time counts from the start.
 */
export class Pacer {
  private readonly startedMs: number;
  private bytes = 0;

  /** `bytesPerSecond` null or 0: no limit. */
  constructor(private readonly bytesPerSecond: number | null, private readonly clock: PacerClock = realClock) {
    this.startedMs = clock.now();
  }

  /** Counts `bytes` read and waits until they are due. */
  async take(bytes: number): Promise<void> {
    if (!this.bytesPerSecond) return;
    this.bytes += bytes;
    const dueMs = (this.bytes / this.bytesPerSecond) * 1000;
    const aheadMs = dueMs - (this.clock.now() - this.startedMs);
    if (aheadMs >= 1) await this.clock.sleep(aheadMs);
  }
}
