import type { FilesPart } from './index.js';
import type { Logger } from '../logger.js';

/**
 * Last-access times, batched: a GET records in memory, a timer writes the
 * batch to the index in one transaction (docs/design.md §7). Eviction asks
 * `get()` first, so a read is visible to it at once, before any flush.
 */
export class AccessTimes {
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly files: Pick<FilesPart, 'touchMany'>, private readonly logger: Logger) {}

  touch(name: string, ms: number): void {
    const prev = this.pending.get(name);
    if (prev === undefined || prev < ms) this.pending.set(name, ms);
  }

  /** The newest unflushed access time of a name, if any. */
  get(name: string): number | undefined {
    return this.pending.get(name);
  }

  forget(name: string): void {
    this.pending.delete(name);
  }

  /** Writes the pending times to the index; the number written (0 when the write failed: they stay pending). */
  async flush(): Promise<number> {
    if (this.pending.size === 0) return 0;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.files.touchMany(batch);
    } catch (err) {
      // A full disk (SQLITE_FULL) must not lose reads: keep them for the next flush.
      for (const [name, ms] of batch) this.touch(name, ms);
      this.logger.warn('access time flush failed; will retry', { error: (err as Error).message, pending: this.pending.size });
      return 0;
    }
    return batch.size;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
