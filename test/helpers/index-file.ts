import path from 'node:path';
import type { FileRecord, MetadataIndex, PendingClaim } from '../../src/index/index.js';
import { openSqliteIndex } from '../../src/index/sqlite/sqlite-index.js';

/** Runs `read` on the index of a data dir that another process owns, opened read-only through the index API. */
export async function readIndexOf<T>(dataDir: string, read: (index: MetadataIndex) => Promise<T>): Promise<T> {
  const index = openSqliteIndex(path.join(dataDir, 'index.sqlite'), { readonly: true });
  try {
    return await read(index);
  } finally {
    await index.close();
  }
}

/** Every row of the index of a data dir, in name order. */
export function indexedFiles(dataDir: string): Promise<FileRecord[]> {
  return readIndexOf(dataDir, async (index) => {
    const rows: FileRecord[] = [];
    for await (const name of index.files.names()) {
      const row = await index.files.get(name);
      if (row) rows.push(row);
    }
    return rows;
  });
}

/** The name claims in the index of a data dir. */
export function pendingClaims(dataDir: string): Promise<PendingClaim[]> {
  return readIndexOf(dataDir, (index) => index.claims.all());
}
