import type { RunFilter } from '../index/index.js';

/** One eviction run, as the run log keeps it and monitoring reports it. */
export interface EvictionRun {
  /** Epoch ms when the run started. */
  at: number;
  files: number;
  bytes: number;
  durationMs: number;
  /** What started it: schedule, watermark, quota, admin, cli… */
  reason: string;
  /** The failure ("EACCES: permission denied…"), null when the run succeeded. */
  error: string | null;
  /** Files and bytes per eviction reason (expired, maxAge, maxIdle, quota, watermark…); absent: all under `reason`. */
  byReason?: Readonly<Record<string, { files: number; bytes: number }>>;
  /**
   * The run reached the shared run log: the node counts it from there, with
   * the runs of other processes (src/monitoring/run-log.ts), not from this
   * event, so no run is counted twice.
   */
  logged?: boolean;
}

export type { RunFilter } from '../index/index.js';

/**
 * What monitoring (src/monitoring/) needs from eviction: the last run and a
 * hook for each new one. Kept this narrow so the engine can change freely;
 * monitoring imports it from here, eviction never imports monitoring.
 */
export interface EvictionReport {
  /** The last real run of any process (`filter` "any", the default), the last that removed files, or the last that succeeded. */
  lastRun(filter?: RunFilter): Promise<EvictionRun | null>;
  /** The last `limit` runs, newest first. */
  recentRuns(limit: number): Promise<EvictionRun[]>;
  onRun(listener: (run: EvictionRun) => void): void;
  /** Who holds the cross-process eviction lock now (pid, since epoch ms), null when free. */
  lockHolder(): Promise<{ pid: number; sinceMs: number } | null>;
}
