const MINUTE_MS = 60_000;

/** Refused writes in the recent past, by reason. */
export interface RecentRefusals {
  count: number;
  byReason: Record<string, number>;
}

/**
 * Counts refused writes per minute for the alert sentence "N writes refused
 * in the last 15 min": bounded (one small map per minute), exact to the minute.
 */
export class RefusalLog {
  private readonly minutes = new Map<number, Map<string, number>>();

  constructor(private readonly now: () => number, private readonly keepMs = 15 * MINUTE_MS) {}

  note(reason: string): void {
    const minute = Math.floor(this.now() / MINUTE_MS);
    const counts = this.minutes.get(minute) ?? new Map<string, number>();
    counts.set(reason, (counts.get(reason) ?? 0) + 1);
    this.minutes.set(minute, counts);
    this.prune(minute);
  }

  /** Refusals within the last `keepMs` (15 min). */
  recent(): RecentRefusals {
    const current = Math.floor(this.now() / MINUTE_MS);
    this.prune(current);
    const byReason: Record<string, number> = {};
    let count = 0;
    for (const counts of this.minutes.values()) {
      for (const [reason, n] of counts) {
        byReason[reason] = (byReason[reason] ?? 0) + n;
        count += n;
      }
    }
    return { count, byReason };
  }

  private prune(currentMinute: number): void {
    const oldest = currentMinute - Math.ceil(this.keepMs / MINUTE_MS) + 1;
    for (const minute of this.minutes.keys()) if (minute < oldest) this.minutes.delete(minute);
  }
}
