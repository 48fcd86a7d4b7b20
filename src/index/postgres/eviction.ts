import pg from 'pg';
import type { ClusterEvictionPart, ClusterLock, ClusterLockHolder } from '../index.js';
import { EVICTION_LOCK, translatePgError, type Db } from './db.js';

/** Ticks older than this are forgotten (a schedule fires at most once a second; nodes' timers differ by far less). */
const KEEP_TICKS_MS = 24 * 3600_000;
/** What the lock's connection calls itself in pg_stat_activity: how others learn who holds it. */
const NAME = /^nanocdn-evict host=(.*) pid=(\d+)$/;

/**
 * The cluster's eviction lock and schedule on PostgreSQL. The lock is
 * `pg_try_advisory_lock` on a connection of its own (not the pool's),
 * held for the run: the server lets it go when the run releases it, when
 * the connection ends, and when the process dies. The holder is read from
 * pg_locks and the connection's application_name. A tick is claimed by one
 * `INSERT … ON CONFLICT DO NOTHING`.
 */
export class PgClusterEviction implements ClusterEvictionPart {
  constructor(private readonly db: Db, private readonly url: string) {}

  async tryLock(holder: { host: string; pid: number }): Promise<ClusterLock | null> {
    const client = new pg.Client({ connectionString: this.url, application_name: `nanocdn-evict host=${holder.host} pid=${holder.pid}`, connectionTimeoutMillis: 5000 });
    // A connection that breaks later ends the lock with it; the run goes on (it is only the cluster's mutual exclusion).
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [EVICTION_LOCK.classid, EVICTION_LOCK.objid]);
      if (!rows[0].ok) {
        await client.end();
        return null;
      }
    } catch (err) {
      await client.end().catch(() => undefined);
      return translatePgError(err);
    }
    let released = false;
    return {
      async release() {
        if (released) return;
        released = true;
        await client.query('SELECT pg_advisory_unlock($1, $2)', [EVICTION_LOCK.classid, EVICTION_LOCK.objid]).catch(() => undefined);
        await client.end().catch(() => undefined);
      },
    };
  }

  async holder(): Promise<ClusterLockHolder | null> {
    const row = await this.db.row<{ name: string; since_ms: number }>(`SELECT a.application_name AS name,
        (extract(epoch FROM COALESCE(a.xact_start, a.backend_start)) * 1000)::bigint AS since_ms
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2 LIMIT 1`,
    [EVICTION_LOCK.classid, EVICTION_LOCK.objid]);
    if (!row) return null;
    const m = NAME.exec(row.name);
    return { host: m?.[1] ?? 'unknown', pid: m ? Number(m[2]) : 0, sinceMs: row.since_ms };
  }

  async claimTick(tickMs: number, nodeId: string | null): Promise<boolean> {
    const won = await this.db.run(`INSERT INTO eviction_ticks (tick_ms, node_id, claimed_ms) VALUES ($1, $2, $3)
      ON CONFLICT (tick_ms) DO NOTHING`, [tickMs, nodeId, Date.now()]) > 0;
    if (won) await this.db.run('DELETE FROM eviction_ticks WHERE tick_ms < $1', [tickMs - KEEP_TICKS_MS]);
    return won;
  }
}
