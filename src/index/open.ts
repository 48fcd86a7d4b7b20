import path from 'node:path';
import type { MetadataIndex } from './index.js';
import { openSqliteIndex } from './sqlite/sqlite-index.js';

/** The one place that picks the index engine of a data dir: today SQLite in `<dataDir>/index.sqlite`. */
export function openIndex(dataDir: string): MetadataIndex {
  return openSqliteIndex(path.join(dataDir, 'index.sqlite'));
}
