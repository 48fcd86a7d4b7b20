/**
 * The sizes uploads asked for (declared Content-Length, admitted or not)
 * over the last hour, in memory: what "a typical upload" is when /usage
 * says whether the node is writable. Refused uploads count too: a node that
 * refuses every 1.6 MB upload must not look writable because none succeeded.
 */
export class UploadSizes {
  private readonly entries: { atMs: number; bytes: number }[] = [];

  constructor(
    private readonly now: () => number,
    private readonly windowMs = 3_600_000,
    /** At most this many remembered (the newest); a median of 10k is as good as of 1M. */
    private readonly keep = 10_000,
  ) {}

  note(bytes: number): void {
    this.entries.push({ atMs: this.now(), bytes });
    if (this.entries.length > this.keep) this.entries.splice(0, this.entries.length - this.keep);
  }

  /** The median declared size within the window; null without uploads. */
  median(): number | null {
    const from = this.now() - this.windowMs;
    let first = 0;
    while (first < this.entries.length && this.entries[first].atMs < from) first++;
    if (first > 0) this.entries.splice(0, first);
    if (this.entries.length === 0) return null;
    const sorted = this.entries.map((e) => e.bytes).sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : Math.round((sorted[mid - 1] + sorted[mid]) / 2);
  }
}
