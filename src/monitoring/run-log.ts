import type { LoggedRun, RunsPart } from '../index/index.js';

/** Runs read per query while catching up. */
const PAGE = 500;

/**
 * Follows the shared eviction run log (docs/design.md §8): every run
 * recorded after start() — by this node or by another process such as
 * `nanocdn cleanup` — is handed to `onRun` exactly once, in log order. The
 * log's ids only grow, so a cursor is all it keeps; catch-ups run one after
 * the other, so two of them never hand over the same run.
 */
export class RunLogFollower {
  private cursor: number | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly runs: Pick<RunsPart, 'cursor' | 'since'>, private readonly onRun: (run: LoggedRun) => void) {}

  /** From now on: runs already in the log belong to an earlier life of the counters. */
  async start(): Promise<void> {
    this.cursor = await this.runs.cursor();
  }

  /** Hands over the runs recorded since the last catch-up. */
  catchUp(): Promise<void> {
    const next = this.chain.then(() => this.readNew());
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async readNew(): Promise<void> {
    for (;;) {
      if (this.cursor === null) return;
      const runs = await this.runs.since(this.cursor, PAGE);
      for (const run of runs) {
        this.cursor = run.id;
        this.onRun(run);
      }
      if (runs.length < PAGE) return;
    }
  }
}
