const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/** Refused writes in the recent past, by reason. */
export interface RecentRefusals {
  count: number;
  byReason: Record<string, number>;
}

/** Finished uploads and refused writes over one window (GET /usage `writes`). */
export interface WriteCounts {
  /** Finished uploads by result: created, exists, refused, failed. */
  uploads: Record<string, number>;
  refused: RecentRefusals;
  /** Start of what was counted: the window's start, or the process start when it is younger. */
  sinceMs: number;
}

/**
 * Counts finished uploads by result and refused writes by reason per minute,
 * for the alert sentence "N writes refused in the last 15 min" and the status
 * page's 15 min / 24 h figures: bounded (one small map per minute, kept a
 * day), exact to the minute, in this process's memory (a restart starts over).
 */
export class RefusalLog {
  private readonly minutes = new Map<number, Map<string, number>>();
  private readonly startedMs: number;

  constructor(private readonly now: () => number, private readonly keepMs = DAY_MS) {
    this.startedMs = now();
  }

  /** A write refused for `reason` (an error code). */
  note(reason: string): void {
    this.count(`refused:${reason}`);
  }

  /** An upload finished with `outcome` (created, exists, refused, failed). */
  noteUpload(outcome: string): void {
    this.count(`upload:${outcome}`);
  }

  /** Refusals within the last `windowMs` (default 15 min). */
  recent(windowMs = 15 * MINUTE_MS): RecentRefusals {
    return this.writes(windowMs).refused;
  }

  /** Uploads and refusals within the last `windowMs` (at most the kept day). */
  writes(windowMs: number): WriteCounts {
    const nowMs = this.now();
    const current = Math.floor(nowMs / MINUTE_MS);
    this.prune(current);
    const oldest = current - Math.ceil(Math.min(windowMs, this.keepMs) / MINUTE_MS) + 1;
    const uploads: Record<string, number> = { created: 0, exists: 0, refused: 0, failed: 0 };
    const refused: RecentRefusals = { count: 0, byReason: {} };
    for (const [minute, counts] of this.minutes) {
      if (minute < oldest) continue;
      for (const [key, n] of counts) {
        const [kind, name] = key.split(':');
        if (kind === 'upload') uploads[name] = (uploads[name] ?? 0) + n;
        else {
          refused.byReason[name] = (refused.byReason[name] ?? 0) + n;
          refused.count += n;
        }
      }
    }
    return { uploads, refused, sinceMs: Math.max(this.startedMs, oldest * MINUTE_MS) };
  }

  private count(key: string): void {
    const minute = Math.floor(this.now() / MINUTE_MS);
    const counts = this.minutes.get(minute) ?? new Map<string, number>();
    counts.set(key, (counts.get(key) ?? 0) + 1);
    this.minutes.set(minute, counts);
    this.prune(minute);
  }

  private prune(currentMinute: number): void {
    const oldest = currentMinute - Math.ceil(this.keepMs / MINUTE_MS) + 1;
    for (const minute of this.minutes.keys()) if (minute < oldest) this.minutes.delete(minute);
  }
}
