import type { Logger } from '../logger.js';
import type { Storage } from '../storage/storage.js';
import type { DiskGuard } from './disk-guard.js';

/**
 * Removes upload spool entries that no live upload owns: all of them at
 * start (they belong to a dead process), and those older than tmpMaxAge on
 * a timer and on the eviction schedule.
 */
export class TmpSweeper {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly guard: DiskGuard,
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly maxAgeMs: number,
  ) {}

  /** Sweeps entries older than `olderThanMs` (default tmpMaxAge); logs what went. */
  async sweep(olderThanMs = this.maxAgeMs): Promise<{ files: number; bytes: number }> {
    const swept = await this.storage.sweepTmp(olderThanMs, this.now());
    if (swept.files > 0) {
      this.guard.noteFreed(swept.bytes);
      this.logger.warn('swept stale tmp entries', { files: swept.files, bytes: swept.bytes, olderThanMs });
    }
    return swept;
  }

  start(): void {
    const every = Math.max(1000, Math.min(this.maxAgeMs / 2, 5 * 60_000));
    this.timer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.logger.error('tmp sweep failed', { error: (err as Error).message }));
    }, every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
