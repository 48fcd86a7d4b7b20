import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { MetadataIndex } from './index.js';
import { openSqliteIndex } from './sqlite/sqlite-index.js';

/**
 * The one place that picks the index engine (`index.engine`): SQLite in
 * `<dataDir>/index.sqlite`, or the PostgreSQL database at `index.url`
 * (node-postgres is loaded only then, so a SQLite node never pays for it).
 */
export async function openIndex(config: Pick<Config, 'index'>, dataDir: string): Promise<MetadataIndex> {
  if (config.index.engine === 'postgres') {
    if (config.index.url === null) throw new Error('index.url is required when index.engine is "postgres"');
    const { openPostgresIndex } = await import('./postgres/postgres-index.js');
    return openPostgresIndex(config.index.url);
  }
  return openSqliteIndex(path.join(dataDir, 'index.sqlite'));
}
