import { createHash } from 'node:crypto';
import { isHttpError } from '../errors.js';
import { parseName, type StoredName } from '../names.js';
import type { Storage } from '../storage/storage.js';
import type { FileRecord, FilesPart } from '../index/index.js';
import type { Pacer } from './pacer.js';

/** What is wrong with a stored file: its size, its bytes (same size), no file at all, or a read that failed. */
export type ScrubProblem = 'size' | 'sha256' | 'missing' | 'unreadable';

export interface BadFile {
  name: string;
  problem: ScrubProblem;
  /** What the index row records. */
  expectedSize: number;
  expectedSha256: string;
  /** What was read; null when nothing could be (missing) or the read failed. */
  actualSize: number | null;
  actualSha256: string | null;
  /** The read error of an unreadable file. */
  error?: string;
  /** Where the bytes went with quarantine; null when they stayed. */
  quarantinedTo: string | null;
}

export interface ScrubResult {
  /** Epoch ms at the start. */
  atMs: number;
  durationMs: number;
  /** Rows checked, and the bytes read. */
  checked: number;
  bytes: number;
  ok: number;
  /** size, sha256 and unreadable files. */
  corrupt: number;
  missing: number;
  quarantined: number;
  /** Rows that changed or went while they were read (a delete, a new upload of the name): not judged. */
  changedMeanwhile: number;
  /** Every bad file, in name order. */
  bad: BadFile[];
}

export interface ScrubDeps {
  storage: Storage;
  files: FilesPart;
  pacer: Pacer;
  now: () => number;
  /** Moves a corrupt file away and drops its row; returns where it went. Absent: bad files stay. */
  quarantine?: (name: StoredName) => Promise<string>;
}

/**
 * Reads every indexed file at the pacer's rate and compares its size and
 * sha256 with its row (docs/design.md §10). Files without a row are the
 * reconcile's business (`nanocdn reindex`), not the scrub's. A file that
 * turns out bad is judged again against its row as it is then, so a delete
 * or re-upload during the read is not reported.
 */
export async function scrub(deps: ScrubDeps): Promise<ScrubResult> {
  const atMs = deps.now();
  const started = performance.now();
  const result: ScrubResult = { atMs, durationMs: 0, checked: 0, bytes: 0, ok: 0, corrupt: 0, missing: 0, quarantined: 0, changedMeanwhile: 0, bad: [] };
  for await (const name of deps.files.names()) {
    const row = await deps.files.get(name);
    if (!row) continue;
    result.checked++;
    const stored = parseName(name);
    const read = await readWhole(deps, stored);
    result.bytes += read.size ?? 0;
    const problem: ScrubProblem | null = read.missing ? 'missing' : read.error !== undefined ? 'unreadable'
      : read.size !== row.size ? 'size' : read.sha256 !== row.sha256 ? 'sha256' : null;
    if (problem === null) {
      result.ok++;
      continue;
    }
    if (!sameRow(row, await deps.files.get(name))) {
      result.changedMeanwhile++;
      continue;
    }
    const bad: BadFile = {
      name, problem, expectedSize: row.size, expectedSha256: row.sha256, actualSize: read.size, actualSha256: read.sha256,
      ...(read.error === undefined ? {} : { error: read.error }), quarantinedTo: null,
    };
    if (problem === 'missing') result.missing++;
    else result.corrupt++;
    // An unreadable file cannot be copied out; a missing one has nothing to move (`nanocdn reindex` drops its row).
    if (deps.quarantine && (problem === 'size' || problem === 'sha256')) {
      bad.quarantinedTo = await deps.quarantine(stored);
      result.quarantined++;
    }
    result.bad.push(bad);
  }
  result.durationMs = performance.now() - started;
  return result;
}

interface Read { size: number | null; sha256: string | null; missing: boolean; error?: string }

/** Reads a whole object at the pacer's rate: its size and sha256, or why not. */
async function readWhole(deps: ScrubDeps, stored: StoredName): Promise<Read> {
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of await deps.storage.open(stored)) {
      const buffer = chunk as Buffer;
      hash.update(buffer);
      size += buffer.length;
      await deps.pacer.take(buffer.length);
    }
  } catch (err) {
    if (isHttpError(err) && err.code === 'not_found' && size === 0) return { size: null, sha256: null, missing: true };
    return { size: null, sha256: null, missing: false, error: (err as Error).message };
  }
  return { size, sha256: hash.digest('hex'), missing: false };
}

/** The row still describes the same upload. */
function sameRow(before: FileRecord, now: FileRecord | undefined): boolean {
  return now !== undefined && now.size === before.size && now.sha256 === before.sha256 && now.createdMs === before.createdMs;
}
