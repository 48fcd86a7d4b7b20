import { HttpError } from './errors.js';
import type { Logger } from './logger.js';
import type { StoredName } from './names.js';
import type { RetiredPart } from './index/index.js';

/**
 * Retired pub names (docs/design.md §2). A pub file is served
 * `Cache-Control: public, max-age=31536000, immutable`, so once its file is
 * removed (DELETE, eviction, the cleanup command, a failed upload's undo)
 * browsers and CDNs may keep its bytes for `upload.retirePubNamesFor`. For
 * that long the name keeps the checksum it was served with, and an upload
 * of other bytes under it is refused with `409 name_retired`; the same bytes
 * are a harmless restore. priv names are served `private` and never retired.
 */
export class RetiredNames {
  constructor(private readonly deps: { retired: RetiredPart; retentionMs: number; now: () => number; logger: Logger }) {}

  /** When a removal of `stored` now retires its name; null for priv names or with retiring off. */
  retireAt(stored: StoredName): number | null {
    return this.applies(stored) ? this.deps.now() : null;
  }

  /**
   * Throws `409 name_retired` when `stored` is retired within the retention
   * with a checksum other than `sha256`. A row past the retention is dropped
   * here (the name is free again). True when the name is retired with these
   * very bytes: the upload restores it, and then calls restored().
   */
  async check(stored: StoredName, sha256: string): Promise<boolean> {
    if (!this.applies(stored)) return false;
    const row = await this.deps.retired.get(stored.name);
    if (!row) return false;
    if (row.sha256 === sha256) return true;
    const untilMs = row.retiredMs + this.deps.retentionMs;
    if (this.deps.now() >= untilMs) {
      await this.deps.retired.drop(stored.name);
      return false;
    }
    const at = new Date(row.retiredMs).toISOString();
    const until = new Date(untilMs).toISOString();
    throw new HttpError('name_retired',
      `The pub name ${stored.name} was removed at ${at} and is retired until ${until}: pub files are served immutable for a year, ` +
      `so caches may still hold its old bytes. Upload the same bytes (sha256 ${row.sha256}) to restore it, or use a new name.`,
      { name: stored.name, retiredAt: at, retiredUntil: until, retiredSha256: row.sha256 });
  }

  /** After an upload that restores `stored` (check() said so) succeeded: its retired row is no longer needed. */
  async restored(stored: StoredName): Promise<void> {
    try {
      await this.deps.retired.drop(stored.name);
    } catch (err) {
      this.deps.logger.warn('could not drop a retired name after its restore', { name: stored.name, error: (err as Error).message });
    }
  }

  /** Drops rows past the retention (the eviction pass calls it); the number dropped. */
  async prune(): Promise<number> {
    return this.deps.retired.prune(this.deps.now() - this.deps.retentionMs);
  }

  private applies(stored: StoredName): boolean {
    return stored.visibility === 'pub' && this.deps.retentionMs > 0;
  }
}
