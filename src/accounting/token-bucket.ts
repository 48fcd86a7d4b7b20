/**
 * A token bucket of `perMinute` tokens: full at the start, refilled
 * continuously at perMinute/60 per second, holding at most perMinute (a
 * burst of one minute's worth). May go negative (bytes counted after the
 * fact), which delays the next admission until it has refilled.
 */
export class TokenBucket {
  private tokens: number;
  private atMs: number;

  constructor(private readonly perMinute: number, nowMs: number) {
    this.tokens = perMinute;
    this.atMs = nowMs;
  }

  private refill(nowMs: number): void {
    if (nowMs > this.atMs) {
      this.tokens = Math.min(this.perMinute, this.tokens + ((nowMs - this.atMs) * this.perMinute) / 60_000);
      this.atMs = nowMs;
    }
  }

  /** Seconds (at least 1) until `amount` (capped at the bucket's size) would fit; 0 when it fits now. */
  waitSeconds(amount: number, nowMs: number): number {
    this.refill(nowMs);
    const need = Math.min(amount, this.perMinute);
    if (this.tokens >= need) return 0;
    return Math.max(1, Math.ceil(((need - this.tokens) * 60) / this.perMinute));
  }

  take(amount: number, nowMs: number): void {
    this.refill(nowMs);
    this.tokens -= amount;
  }

  /** Gives back tokens taken for something that did not happen (a spare hold never used), up to a full bucket. */
  give(amount: number, nowMs: number): void {
    this.refill(nowMs);
    this.tokens = Math.min(this.perMinute, this.tokens + amount);
  }

  /** Full again: the bucket can be forgotten (a new one starts full). */
  isFull(nowMs: number): boolean {
    this.refill(nowMs);
    return this.tokens >= this.perMinute;
  }
}
