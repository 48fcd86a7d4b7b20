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
}

/**
 * What monitoring (src/monitoring/) needs from eviction: the last run and a
 * hook for each new one. Kept this narrow so the engine can change freely;
 * monitoring imports it from here, eviction never imports monitoring.
 */
export interface EvictionReport {
  lastRun(): Promise<EvictionRun | null>;
  /** The last `limit` runs, newest first. */
  recentRuns(limit: number): Promise<EvictionRun[]>;
  onRun(listener: (run: EvictionRun) => void): void;
  /** Who holds the cross-process eviction lock now (pid, since epoch ms), null when free. */
  lockHolder(): Promise<{ pid: number; sinceMs: number } | null>;
}
