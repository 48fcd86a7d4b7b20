import type Database from 'better-sqlite3';
import type { TotalsPart, UsageTotal } from '../index.js';

/** The trigger-kept `totals` table (src/index/sqlite/schema.ts). */
export class SqliteTotals implements TotalsPart {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      all: db.prepare<[], UsageTotal>('SELECT tenant, class, files, bytes FROM totals'),
      tenantClass: db.prepare<[string, string], UsageTotal>('SELECT tenant, class, files, bytes FROM totals WHERE tenant = ? AND class = ?'),
      summary: db.prepare<[], { files: number; bytes: number }>('SELECT COALESCE(SUM(files), 0) AS files, COALESCE(SUM(bytes), 0) AS bytes FROM totals'),
      byClass: db.prepare<[], { class: string; files: number; bytes: number }>(
        'SELECT class, SUM(files) AS files, SUM(bytes) AS bytes FROM totals GROUP BY class'),
      topTenants: db.prepare<[number], { tenant: string; files: number; bytes: number }>(
        'SELECT tenant, SUM(files) AS files, SUM(bytes) AS bytes FROM totals GROUP BY tenant ORDER BY bytes DESC, tenant LIMIT ?'),
      ofTenant: db.prepare<[string], { class: string; files: number; bytes: number }>(
        'SELECT class, files, bytes FROM totals WHERE tenant = ? ORDER BY class'),
    };
  }

  async all(): Promise<UsageTotal[]> {
    return this.stmts.all.all();
  }

  async tenantClass(tenant: string, className: string): Promise<UsageTotal> {
    return this.stmts.tenantClass.get(tenant, className) ?? { tenant, class: className, files: 0, bytes: 0 };
  }

  async summary(): Promise<{ files: number; bytes: number }> {
    return this.stmts.summary.get()!;
  }

  async byClass(): Promise<{ class: string; files: number; bytes: number }[]> {
    return this.stmts.byClass.all();
  }

  async topTenants(limit: number): Promise<{ tenant: string; files: number; bytes: number }[]> {
    return this.stmts.topTenants.all(limit);
  }

  async ofTenant(tenant: string): Promise<{ class: string; files: number; bytes: number }[]> {
    return this.stmts.ofTenant.all(tenant);
  }
}
