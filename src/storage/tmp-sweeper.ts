import type { Logger } from '../logger.js';
import type { Storage } from './storage.js';

/**
 * Removes upload spool entries that no live upload owns: all of them at
 * start (they belong to a dead process), and those older than tmpMaxAge on
 * a timer and on the eviction schedule.
 */
export class TmpSweeper {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly storage: Storage,
    /** Called after a sweep removed something (the disk guard's noteFreed). */
    private readonly onFreed: () => void,
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly maxAgeMs: number,
    /** Which writers' entries this process sweeps (by their pid; see Storage.sweepTmp); absent: all. */
    private readonly mayRemove?: (ownerPid: number | null) => boolean,
  ) {}

  /** Sweeps entries older than `olderThanMs` (default tmpMaxAge) that no live upload owns; logs what went. */
  async sweep(olderThanMs = this.maxAgeMs): Promise<{ files: number; bytes: number }> {
    const swept = await this.storage.sweepTmp(olderThanMs, this.now(), this.mayRemove);
    if (swept.files > 0) {
      this.onFreed();
      const why = olderThanMs === -Infinity ? 'left by a previous process' : `older than ${Math.round(olderThanMs / 1000)}s`;
      this.logger.warn(`swept ${swept.files} stale tmp entries (${swept.bytes} bytes, ${why})`, { files: swept.files, bytes: swept.bytes, olderThanMs });
    }
    return swept;
  }

  /** At start, before listening: every tmp entry belongs to a dead process, whatever its mtime. */
  sweepAll(): Promise<{ files: number; bytes: number }> {
    return this.sweep(-Infinity);
  }

  /** Sweeps every `everyMs` (default: half of tmpMaxAge, at most 5 min). */
  start(everyMs?: number): void {
    const every = everyMs ?? Math.max(1000, Math.min(this.maxAgeMs / 2, 5 * 60_000));
    this.timer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.logger.error('tmp sweep failed', { error: (err as Error).message }));
    }, every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
