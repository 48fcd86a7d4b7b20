import type { CandidateRow, CandidateScope, CandidatesPart } from '../index.js';
import { CANDIDATE_COLUMNS, keysetPages, LRU_START, lruKeyOf, type CandidateFileRow } from '../rows.js';
import type { Db } from './db.js';

/**
 * Eviction candidates in batches by keyset pagination (row comparisons on the
 * order of an index of schema.ts: no OFFSET, no whole-table load). Each batch
 * is one finished query: no cursor stays open while the caller awaits.
 */
export class PgCandidates implements CandidatesPart {
  constructor(private readonly db: Db) {}

  expired(now: number, scope: CandidateScope, batch: number): AsyncGenerator<CandidateRow[]> {
    return keysetPages({ ms: Number.MIN_SAFE_INTEGER, name: '' }, (after) => this.db.rows<CandidateFileRow>(`SELECT ${CANDIDATE_COLUMNS} FROM files
      WHERE expires_ms IS NOT NULL AND expires_ms <= $1 AND (expires_ms, name) > ($2::bigint, $3::text)
      AND ($4::text IS NULL OR class = $4) AND ($5::text IS NULL OR tenant = $5)
      ORDER BY expires_ms, name LIMIT $6`, [now, after.ms, after.name, scope.class ?? null, scope.tenant ?? null, batch]),
    (last) => ({ ms: last.expires_ms!, name: last.name }));
  }

  aged(cls: string, createdBefore: number, accessedBefore: number, scope: CandidateScope, batch: number): AsyncGenerator<CandidateRow[]> {
    return keysetPages('', (afterName) => this.db.rows<CandidateFileRow>(`SELECT ${CANDIDATE_COLUMNS} FROM files
      WHERE class = $1 AND ($2::text IS NULL OR tenant = $2) AND (created_ms <= $3 OR accessed_ms <= $4)
      AND name > $5 ORDER BY name LIMIT $6`, [cls, scope.tenant ?? null, createdBefore, accessedBefore, afterName, batch]),
    (last) => last.name);
  }

  tenantLru(tenant: string, cls: string, batch: number): AsyncGenerator<CandidateRow[]> {
    return keysetPages(LRU_START, ({ a, c, n }) => this.db.rows<CandidateFileRow>(`SELECT ${CANDIDATE_COLUMNS} FROM files
      WHERE class = $1 AND tenant = $2 AND (accessed_ms, created_ms, name) > ($3::bigint, $4::bigint, $5::text)
      ORDER BY accessed_ms, created_ms, name LIMIT $6`, [cls, tenant, a, c, n, batch]), lruKeyOf);
  }

  globalLru(classes: readonly string[], scope: CandidateScope, batch: number): AsyncGenerator<CandidateRow[]> {
    const wanted = scope.class ? classes.filter((c) => c === scope.class) : [...classes];
    return keysetPages(LRU_START, ({ a, c, n }) => this.db.rows<CandidateFileRow>(`SELECT ${CANDIDATE_COLUMNS} FROM files
      WHERE (accessed_ms, created_ms, name) > ($1::bigint, $2::bigint, $3::text) AND class = ANY ($4::text[])
      AND ($5::text IS NULL OR tenant = $5)
      ORDER BY accessed_ms, created_ms, name LIMIT $6`, [a, c, n, wanted, scope.tenant ?? null, batch]), lruKeyOf);
  }
}
