import { isHttpError } from './errors.js';
import type { Logger } from './logger.js';
import type { StoredName } from './names.js';
import type { Storage } from './storage/storage.js';
import type { FilesPart } from './index/index.js';
import type { RetiredNames } from './retired-names.js';

/** What removing a file touches. */
export interface RemoveFileDeps {
  storage: Pick<Storage, 'remove'>;
  files: Pick<FilesPart, 'get' | 'remove' | 'removeMany'>;
  /** Unflushed access times (src/index/access-times.ts). */
  access: { forget(name: string): void };
  /** The disk guard: its reading is stale once bytes were freed. */
  guard: { noteFreed(): void };
  logger: Logger;
  /** Retires the pub names removed (src/retired-names.ts); absent: nothing is retired. */
  retired?: Pick<RetiredNames, 'retireAt'>;
}

/**
 * Removes one stored file, the one way DELETE, eviction and failed uploads
 * do it: the bytes first (the stored file is the truth), then the index row
 * (even when the file was already gone: that row was stale), then the
 * unflushed access time; the disk guard rereads the disk when bytes were
 * freed. A pub name is retired with its row, in one transaction
 * (docs/design.md §2, src/retired-names.ts). An index that refuses the
 * delete (a full disk) is logged: reconcile drops the row later. An index
 * that cannot be reached (`store_unavailable`, a shared database that is
 * down) is asked first, so nothing is removed while it cannot follow
 * (docs/design.md §15). False when storage held no such file.
 */
export async function removeFile(deps: RemoveFileDeps, stored: StoredName): Promise<boolean> {
  await deps.files.get(stored.name);
  const removed = await deps.storage.remove(stored);
  const retiredMs = deps.retired?.retireAt(stored) ?? null;
  await dropRows(deps, (retire) => deps.files.remove(stored.name, retire ? retiredMs : null), retiredMs !== null, { name: stored.name });
  deps.access.forget(stored.name);
  if (removed) deps.guard.noteFreed();
  return removed;
}

/** The outcome of removing one file of a batch. */
export type RemoveOutcome = { name: string; ok: true } | { name: string; ok: false; error: Error };

/**
 * removeFile for many files: `concurrency` storage removals in flight at
 * once (several times the rate of one by one on a local disk), then the
 * index rows of those removed in one batch, their access times forgotten,
 * the disk guard told once. Outcomes in the order of `names`, whatever
 * order the removals finished in; a failed removal keeps its row.
 */
export async function removeFiles(deps: RemoveFileDeps, names: readonly StoredName[], concurrency: number): Promise<RemoveOutcome[]> {
  const outcomes: RemoveOutcome[] = [];
  for (let i = 0; i < names.length; i += concurrency) {
    const slice = names.slice(i, i + concurrency);
    const settled = await Promise.allSettled(slice.map((stored) => deps.storage.remove(stored)));
    settled.forEach((result, k) => {
      outcomes.push(result.status === 'fulfilled'
        ? { name: slice[k].name, ok: true }
        : { name: slice[k].name, ok: false, error: result.reason as Error });
    });
  }
  const gone = outcomes.filter((outcome) => outcome.ok).map((outcome) => outcome.name);
  const retiredMs = new Map(names.map((stored) => [stored.name, deps.retired?.retireAt(stored) ?? null]));
  const retiring = gone.some((name) => retiredMs.get(name) != null);
  await dropRows(deps, (retire) => deps.files.removeMany(gone, (name) => (retire ? retiredMs.get(name) ?? null : null)), retiring, { files: gone.length });
  for (const name of gone) deps.access.forget(name);
  if (gone.length > 0) deps.guard.noteFreed();
  return outcomes;
}

/**
 * Drops index rows, retiring names with them. An index that cannot take the
 * retired rows (SQLITE_FULL on a full disk) still gets the rows dropped:
 * freeing them matters more than the retirement, whose loss is logged.
 * Anything else is logged for reconcile to catch up.
 */
async function dropRows(deps: RemoveFileDeps, drop: (retire: boolean) => Promise<unknown>, retiring: boolean, what: Record<string, unknown>): Promise<void> {
  try {
    await drop(retiring);
    return;
  } catch (err) {
    // The database went away between the check and the drop: the caller hears it (503); the row goes with the next try or reconcile.
    if (isHttpError(err) && err.code === 'store_unavailable') {
      deps.logger.error('index delete failed: the index cannot be reached; reconcile will catch up', { ...what, error: err.message });
      throw err;
    }
    if (retiring) {
      try {
        await drop(false);
        deps.logger.warn('removed without retiring the pub names: the index refused the retired rows', { ...what, error: (err as Error).message });
        return;
      } catch { /* the rows themselves are refused too */ }
    }
    deps.logger.error('index delete failed; reconcile will catch up', { ...what, error: (err as Error).message });
  }
}
