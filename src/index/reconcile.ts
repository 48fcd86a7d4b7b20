import { createHash } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { parseName, type StoredName } from '../names.js';
import { isHttpError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import type { FilesPart } from './index.js';
import type { Classifier } from '../classes.js';

export interface Drift {
  /** Stored files that had no row (or a row of another size): indexed now. */
  added: string[];
  /** Rows whose file is gone: dropped. */
  removed: string[];
  checked: number;
  /** Exact counts; `added` and `removed` stop at listLimit names. */
  addedCount: number;
  removedCount: number;
  /** Entries of the store that are no object and are left alone (symbolic links under files/), with why. */
  skipped: { name: string; why: string }[];
  skippedCount: number;
}

export interface ReconcileOptions {
  /** Report only; change nothing. */
  checkOnly?: boolean;
  now: () => number;
  /** Cap on names listed in the result (counts stay exact). */
  listLimit?: number;
}

/**
 * The files are the truth (docs/design.md §10): indexes files that have no row and
 * drops rows that have no file. Hashes only files it has to add.
 */
export async function reconcile(storage: Storage, files: FilesPart, classifier: Classifier, options: ReconcileOptions): Promise<Drift> {
  const limit = options.listLimit ?? 1000;
  const added: string[] = [];
  const removed: string[] = [];
  let addedCount = 0;
  let removedCount = 0;
  const seen = new Set<string>();
  let checked = 0;
  const skipped: Drift['skipped'] = [];
  let skippedCount = 0;
  const onSkipped = (name: string, why: string) => {
    skippedCount++;
    if (skipped.length < limit) skipped.push({ name, why });
  };
  for await (const info of storage.list(onSkipped)) {
    checked++;
    seen.add(info.name);
    const row = await files.get(info.name);
    if (row && row.size === info.size) continue;
    addedCount++;
    if (added.length < limit) added.push(info.name);
    if (options.checkOnly) continue;
    const stored = parseName(info.name);
    const sha256 = info.sha256 ?? await hashOf(storage, stored);
    if (sha256 === null) continue; // deleted while we listed
    await files.put({
      name: info.name, tenant: stored.tenant, class: row?.class ?? classifier.classify(info.name).name, size: info.size, sha256,
      createdMs: Math.round(info.mtimeMs), accessedMs: row?.accessedMs ?? Math.round(info.mtimeMs), expiresMs: row?.expiresMs ?? null,
    });
    if (checked % 256 === 0) await yieldToLoop();
  }
  const gone: string[] = [];
  for await (const name of files.names()) if (!seen.has(name)) gone.push(name);
  for (const name of gone) {
    // Re-check: an upload may have landed while we listed.
    if (await storage.stat(parseName(name))) continue;
    removedCount++;
    if (removed.length < limit) removed.push(name);
    if (!options.checkOnly) await files.remove(name);
  }
  return { added, removed, checked, addedCount, removedCount, skipped, skippedCount };
}

/** The file's sha256, or null when it went away meanwhile. */
async function hashOf(storage: Storage, stored: StoredName): Promise<string | null> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of await storage.open(stored)) hash.update(chunk as Buffer);
  } catch (err) {
    if (isHttpError(err) && err.code === 'not_found') return null;
    throw err;
  }
  return hash.digest('hex');
}
