import { Cron } from 'croner';
import type { Logger } from '../logger.js';
import type { TmpSweeper } from '../storage/tmp-sweeper.js';
import type { Evictor } from './evictor.js';
import { LockHeldError } from './lock.js';

/**
 * Scheduled eviction (docs/design.md §7): croner only calls the runner and the
 * stale-tmp sweep. Runs never overlap: croner skips a tick while the last
 * one runs (`protect`), and the evictor's lock skips it while another
 * process runs. Without a timezone croner computes the next time with the
 * Date's local fields only: no Intl formatter, whose ICU data cost the idle
 * node about 8 MB of RSS with node-cron, which formatted every tick.
 */
export class EvictionScheduler {
  private task: Cron | undefined;

  constructor(
    private readonly expression: string,
    private readonly evictor: Evictor,
    private readonly sweeper: TmpSweeper,
    private readonly logger: Logger,
    /**
     * On an index several nodes share: true for the one node that runs the
     * tick of this time (docs/design.md §15); absent: every tick runs here.
     */
    private readonly claimTick?: (tickMs: number) => Promise<boolean>,
  ) {}

  start(): void {
    this.task = new Cron(this.expression, { protect: true }, () => this.tick());
  }

  /** When the schedule fires next; null when not started. */
  nextRun(): Date | null {
    return this.task?.nextRun() ?? null;
  }

  /** One scheduled pass: stale tmp entries, then expiry, age, idle and size limits. */
  async tick(): Promise<void> {
    try {
      await this.sweeper.sweep();
    } catch (err) {
      this.logger.error('tmp sweep failed', { error: (err as Error).message });
    }
    if (this.claimTick) {
      // The nodes' timers fire within milliseconds of the scheduled second: rounded, they name the same tick.
      const tickMs = Math.round(Date.now() / 1000) * 1000;
      let mine: boolean;
      try {
        mine = await this.claimTick(tickMs);
      } catch (err) {
        this.logger.error('scheduled eviction skipped: the cluster\'s tick could not be claimed', { error: (err as Error).message });
        return;
      }
      if (!mine) {
        this.logger.debug('scheduled eviction run by another node of the cluster', { tickMs });
        return;
      }
    }
    try {
      await this.evictor.run({ reason: 'schedule' });
    } catch (err) {
      if (err instanceof LockHeldError) this.logger.info('scheduled eviction skipped: another run holds the lock', { holderPid: err.holderPid });
      else this.logger.error('scheduled eviction failed', { error: (err as Error).message });
    }
  }

  stop(): Promise<void> {
    this.task?.stop();
    this.task = undefined;
    return Promise.resolve();
  }
}
