import type { Logger } from '../logger.js';
import type { DiskGuard, DiskState } from '../disk/disk-guard.js';
import type { Evictor } from './evictor.js';
import { LockHeldError } from './lock.js';

/**
 * Low disk (DESIGN §4): when the guard enters `warning` (above the high
 * watermark) or `critical`, evict evictable classes least recently used
 * first, across tenants, down to lowWatermarkPercent. A run that finds the
 * lock held retries until the disk is ok again or the trigger stops.
 */
export class WatermarkTrigger {
  private pending: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = true;
  private readonly onState = (state: DiskState) => { if (state !== 'ok') this.kick(); };

  constructor(
    private readonly guard: DiskGuard,
    private readonly evictor: Evictor,
    private readonly lowWatermarkPercent: number,
    private readonly logger: Logger,
    private readonly retryMs = 5000,
  ) {}

  start(): void {
    this.stopped = false;
    this.guard.on('state', this.onState);
    if (this.guard.currentState !== 'ok') this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.guard.off('state', this.onState);
    if (this.retry) clearTimeout(this.retry);
    await this.pending;
  }

  /** Starts a low-disk pass unless one is already pending. */
  kick(): void {
    if (this.stopped || this.pending) return;
    this.pending = this.pass().finally(() => { this.pending = undefined; });
  }

  private async pass(): Promise<void> {
    await this.evictor.idle();
    const snap = await this.guard.refresh(true);
    if (this.stopped || snap.state === 'ok' || snap.totalBytes === 0) return;
    const target = Math.floor((this.lowWatermarkPercent / 100) * snap.totalBytes);
    const freeBytes = snap.usedBytes - target;
    if (freeBytes <= 0) return;
    try {
      const run = await this.evictor.run({ reason: 'low-disk', freeBytes });
      const after = await this.guard.refresh(true);
      this.logger.log(after.state === 'ok' ? 'info' : 'warn', 'low-disk eviction done', {
        files: run.files, bytes: run.bytes, usedPercent: Number(after.usedPercent.toFixed(2)), state: after.state,
      });
    } catch (err) {
      if (!(err instanceof LockHeldError)) throw err;
      this.logger.warn('low-disk eviction waits for another run', { holderPid: err.holderPid });
      this.retry = setTimeout(() => { if (this.guard.currentState !== 'ok') this.kick(); }, this.retryMs);
      this.retry.unref();
    }
  }
}
