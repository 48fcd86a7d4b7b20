import type Database from 'better-sqlite3';
import type { CandidateRow, CandidateScope, CandidatesPart } from '../index.js';
import { CANDIDATE_COLUMNS, keysetPages, LRU_START, lruKeyOf, type CandidateFileRow } from '../rows.js';

/**
 * Eviction candidates fetched in batches by keyset pagination (no OFFSET, no
 * whole-table load), each batch read in index order so no query sorts:
 * `+class` keeps SQLite from choosing files_lru (class, tenant, …) and then
 * sorting every batch, which made a run quadratic. Each batch is one
 * finished query: no statement stays open while the caller awaits.
 */
export class SqliteCandidates implements CandidatesPart {
  private readonly stmts;

  constructor(db: Database.Database) {
    // LRU across tenants and classes uses files_global_lru; per tenant and class, files_lru.
    const scope = 'AND (@tenant IS NULL OR tenant = @tenant)';
    this.stmts = {
      expired: db.prepare<Record<string, unknown>, CandidateFileRow>(`SELECT ${CANDIDATE_COLUMNS} FROM files
        WHERE expires_ms IS NOT NULL AND expires_ms <= @now AND (expires_ms, name) > (@afterMs, @afterName)
        AND (@class IS NULL OR class = @class) ${scope}
        ORDER BY expires_ms, name LIMIT @limit`),
      aged: db.prepare<Record<string, unknown>, CandidateFileRow>(`SELECT ${CANDIDATE_COLUMNS} FROM files
        WHERE +class = @class ${scope} AND (created_ms <= @createdBefore OR accessed_ms <= @accessedBefore)
        AND name > @afterName ORDER BY name LIMIT @limit`),
      tenantLru: db.prepare<Record<string, unknown>, CandidateFileRow>(`SELECT ${CANDIDATE_COLUMNS} FROM files
        WHERE class = @class AND tenant = @tenant AND (accessed_ms, created_ms, name) > (@a, @c, @n)
        ORDER BY accessed_ms, created_ms, name LIMIT @limit`),
      globalLru: db.prepare<Record<string, unknown>, CandidateFileRow>(`SELECT ${CANDIDATE_COLUMNS} FROM files
        WHERE (accessed_ms, created_ms, name) > (@a, @c, @n) AND +class IN (SELECT value FROM json_each(@classes)) ${scope}
        ORDER BY accessed_ms, created_ms, name LIMIT @limit`),
    };
  }

  expired(now: number, scope: CandidateScope, batch: number): AsyncGenerator<CandidateRow[]> {
    return keysetPages({ afterMs: Number.MIN_SAFE_INTEGER, afterName: '' },
      (after) => this.stmts.expired.all({ now, ...after, tenant: scope.tenant ?? null, class: scope.class ?? null, limit: batch }),
      (last) => ({ afterMs: last.expires_ms!, afterName: last.name }));
  }

  aged(cls: string, createdBefore: number, accessedBefore: number, scope: CandidateScope, batch: number): AsyncGenerator<CandidateRow[]> {
    return keysetPages('',
      (afterName) => this.stmts.aged.all({ class: cls, tenant: scope.tenant ?? null, createdBefore, accessedBefore, afterName, limit: batch }),
      (last) => last.name);
  }

  tenantLru(tenant: string, cls: string, batch: number): AsyncGenerator<CandidateRow[]> {
    return keysetPages(LRU_START, (after) => this.stmts.tenantLru.all({ ...after, tenant, class: cls, limit: batch }), lruKeyOf);
  }

  globalLru(classes: readonly string[], scope: CandidateScope, batch: number): AsyncGenerator<CandidateRow[]> {
    const json = JSON.stringify(scope.class ? classes.filter((c) => c === scope.class) : classes);
    return keysetPages(LRU_START, (after) => this.stmts.globalLru.all({ ...after, classes: json, tenant: scope.tenant ?? null, limit: batch }), lruKeyOf);
  }
}
