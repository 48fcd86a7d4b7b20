import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { EXIT, fail } from './exit-codes.js';

/** The index's file in a data dir. */
export function indexFileOf(dataDir: string): string {
  return path.join(dataDir, 'index.sqlite');
}

/**
 * Ops commands work on an existing data dir only: a typo or the wrong
 * working directory must not become a fresh empty one that reports "nothing
 * to do" with exit 0. Exits 66 (EX_NOINPUT) with one sentence otherwise.
 */
export function requireDataDir(dataDir: string, options: { index: boolean }): void {
  const hint = 'pass --data-dir or set NANOCDN_DATA_DIR / dataDir';
  if (!existsSync(dataDir)) fail(`${dataDir} is not a nanocdn data dir: it does not exist (${hint})`, EXIT.noDataDir);
  if (!statSync(dataDir).isDirectory()) fail(`${dataDir} is not a nanocdn data dir: it is not a directory (${hint})`, EXIT.noDataDir);
  if (options.index && !existsSync(indexFileOf(dataDir))) {
    fail(`${dataDir} is not a nanocdn data dir: it has no index.sqlite (${hint}; \`nanocdn reindex\` builds the index of an existing files/)`, EXIT.noDataDir);
  }
}
