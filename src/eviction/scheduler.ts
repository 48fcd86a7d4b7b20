import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../logger.js';
import type { TmpSweeper } from '../storage/tmp-sweeper.js';
import type { Evictor } from './evictor.js';
import { LockHeldError } from './lock.js';

/**
 * Scheduled eviction (docs/design.md §7): node-cron only calls the runner and the
 * stale-tmp sweep. Runs never overlap: node-cron skips a tick while the last
 * one runs, and the evictor's lock skips it while another process runs.
 */
export class EvictionScheduler {
  private task: ScheduledTask | undefined;

  constructor(
    private readonly expression: string,
    private readonly evictor: Evictor,
    private readonly sweeper: TmpSweeper,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.task = cron.createTask(this.expression, () => this.tick(), { name: 'eviction', noOverlap: true });
    void this.task.start();
  }

  /** When the schedule fires next; null when not started. */
  nextRun(): Date | null {
    return this.task?.getNextRun() ?? null;
  }

  /** One scheduled pass: stale tmp entries, then expiry, age, idle and size limits. */
  async tick(): Promise<void> {
    try {
      await this.sweeper.sweep();
    } catch (err) {
      this.logger.error('tmp sweep failed', { error: (err as Error).message });
    }
    try {
      await this.evictor.run({ reason: 'schedule' });
    } catch (err) {
      if (err instanceof LockHeldError) this.logger.info('scheduled eviction skipped: another run holds the lock', { holderPid: err.holderPid });
      else this.logger.error('scheduled eviction failed', { error: (err as Error).message });
    }
  }

  async stop(): Promise<void> {
    await this.task?.destroy();
    this.task = undefined;
  }
}
