import type { TotalsPart, UsageTotal } from '../index.js';
import type { Db } from './db.js';

/** The trigger-kept `totals` table (src/index/postgres/schema.ts). SUMs are cast back to bigint (a number here). */
export class PgTotals implements TotalsPart {
  constructor(private readonly db: Db) {}

  async all(): Promise<UsageTotal[]> {
    return this.db.rows<UsageTotal>('SELECT tenant, class, files, bytes FROM totals');
  }

  async tenantClass(tenant: string, className: string): Promise<UsageTotal> {
    return await this.db.row<UsageTotal>('SELECT tenant, class, files, bytes FROM totals WHERE tenant = $1 AND class = $2', [tenant, className])
      ?? { tenant, class: className, files: 0, bytes: 0 };
  }

  async summary(): Promise<{ files: number; bytes: number }> {
    return (await this.db.row<{ files: number; bytes: number }>(
      'SELECT COALESCE(SUM(files), 0)::bigint AS files, COALESCE(SUM(bytes), 0)::bigint AS bytes FROM totals'))!;
  }

  async byClass(): Promise<{ class: string; files: number; bytes: number }[]> {
    return this.db.rows('SELECT class, SUM(files)::bigint AS files, SUM(bytes)::bigint AS bytes FROM totals GROUP BY class');
  }

  async topTenants(limit: number): Promise<{ tenant: string; files: number; bytes: number }[]> {
    return this.db.rows(`SELECT tenant, SUM(files)::bigint AS files, SUM(bytes)::bigint AS bytes FROM totals
      GROUP BY tenant ORDER BY bytes DESC, tenant LIMIT $1`, [limit]);
  }

  async ofTenant(tenant: string): Promise<{ class: string; files: number; bytes: number }[]> {
    return this.db.rows('SELECT class, files, bytes FROM totals WHERE tenant = $1 ORDER BY class', [tenant]);
  }
}
