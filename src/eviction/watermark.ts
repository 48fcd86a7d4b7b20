import type { Logger } from '../logger.js';
import type { DiskGuard, DiskState } from '../disk/disk-guard.js';
import type { Evictor } from './evictor.js';
import { LockHeldError } from './lock.js';

/**
 * Low disk (docs/design.md §6, §7): when the guard enters `warning` (above the high
 * watermark) or `critical`, evict evictable classes least recently used
 * first, across tenants, down to lowWatermarkPercent. Passes repeat while
 * the state is not ok (a pass that found the lock held or nothing to evict
 * waits retryMs first), until the disk is ok again or the trigger stops.
 * A pass that cannot run — any error, or the lock held by another run for
 * longer than maxLockWaitMs — is recorded as a failed run (metrics, /usage
 * alert), so a node that cannot evict on a filling disk is never silent.
 */
export class WatermarkTrigger {
  private pending: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = true;
  /** When the passes started finding the lock held (reset by a pass that ran). */
  private waitingSince: number | null = null;
  private readonly onState = (state: DiskState) => { if (state !== 'ok') this.kick(); };

  constructor(
    private readonly guard: DiskGuard,
    private readonly evictor: Evictor,
    private readonly lowWatermarkPercent: number,
    private readonly logger: Logger,
    private readonly retryMs = 5000,
    private readonly maxLockWaitMs = 60_000,
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
    this.pending = this.pass()
      .catch(async (err: unknown) => {
        const error = `low-disk eviction could not run: ${(err as Error).message}`;
        this.logger.error(error);
        await this.evictor.recordFailure('low-disk', error);
        return 0;
      })
      .then((freed) => {
        this.pending = undefined;
        // The state stays `warning` until below the low watermark, so no new
        // event comes: while it lasts, go on at once after a pass that freed
        // space (uploads went on during it), else look again after a pause.
        if (this.stopped || this.guard.currentState === 'ok') return;
        if (freed > 0) { this.kick(); return; }
        this.retry = setTimeout(() => this.kick(), this.retryMs);
        this.retry.unref();
      });
  }

  /** One pass; resolves to the bytes it freed. */
  private async pass(): Promise<number> {
    await this.evictor.idle();
    const snap = await this.guard.refresh(true);
    if (this.stopped || snap.state === 'ok' || snap.totalBytes === 0) return 0;
    const target = Math.floor((this.lowWatermarkPercent / 100) * snap.totalBytes);
    const freeBytes = snap.usedBytes - target;
    if (freeBytes <= 0) return 0;
    try {
      const run = await this.evictor.run({ reason: 'low-disk', freeBytes });
      this.waitingSince = null;
      const after = await this.guard.refresh(true);
      this.logger.log(after.state === 'ok' ? 'info' : 'warn', 'low-disk eviction done', {
        files: run.files, bytes: run.bytes, usedPercent: Number(after.usedPercent.toFixed(2)), state: after.state,
      });
      return run.bytes;
    } catch (err) {
      if (!(err instanceof LockHeldError)) throw err;
      const now = Date.now();
      this.waitingSince ??= now;
      const heldMs = now - Math.min(this.waitingSince, err.holder?.sinceMs ?? now);
      this.logger.warn('low-disk eviction waits for another run', { holderPid: err.holderPid, heldSeconds: Math.round(heldMs / 1000) });
      if (heldMs > this.maxLockWaitMs) {
        await this.evictor.recordFailure('low-disk', `low-disk eviction blocked: the eviction lock has been held by pid ${err.holderPid ?? 'unknown'} for ${Math.round(heldMs / 1000)} s`);
      }
      return 0;
    }
  }
}
