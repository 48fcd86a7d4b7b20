import { createHash } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { parseName, type StoredName } from '../names.js';
import { isHttpError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import type { FilesPart } from './index.js';
import type { Classifier } from '../classes.js';

/** A stored file whose row says otherwise: another size, or (with verifyContent) other bytes of the same size. */
export interface ChangedFile {
  name: string;
  why: 'size' | 'sha256';
  /** The file's size now, and the size its row records. */
  size: number;
  rowSize: number;
}

export interface Drift {
  /** Stored files that had no row: indexed now. */
  added: string[];
  /** Stored files whose row records another size or sha256: the row follows the file now. */
  changed: ChangedFile[];
  /** Rows whose file is gone: dropped. */
  removed: string[];
  checked: number;
  /** Exact counts; `added` and `removed` stop at listLimit names. */
  addedCount: number;
  changedCount: number;
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
  /** Also read every file whose size matches its row and compare its sha256 (`reindex --check`; the node's reconcile never does). */
  verifyContent?: boolean;
}

/**
 * The files are the truth (docs/design.md §10): indexes files that have no row,
 * re-indexes files whose row records another size (or, with verifyContent,
 * other bytes), and drops rows that have no file. Hashes only files it has
 * to add or change, and with verifyContent every file.
 */
export async function reconcile(storage: Storage, files: FilesPart, classifier: Classifier, options: ReconcileOptions): Promise<Drift> {
  const limit = options.listLimit ?? 1000;
  const added: string[] = [];
  const removed: string[] = [];
  const changed: ChangedFile[] = [];
  let addedCount = 0;
  let changedCount = 0;
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
    const stored = parseName(info.name);
    let sha256: string | null | undefined;
    if (row && row.size === info.size) {
      if (!options.verifyContent) continue;
      sha256 = await hashOf(storage, stored);
      if (sha256 === null || sha256 === row.sha256) continue;
    }
    if (row) {
      changedCount++;
      if (changed.length < limit) changed.push({ name: info.name, why: row.size === info.size ? 'sha256' : 'size', size: info.size, rowSize: row.size });
    } else {
      addedCount++;
      if (added.length < limit) added.push(info.name);
    }
    if (options.checkOnly) continue;
    sha256 ??= info.sha256 ?? await hashOf(storage, stored);
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
  return { added, changed, removed, checked, addedCount, changedCount, removedCount, skipped, skippedCount };
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
