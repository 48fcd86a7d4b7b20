const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
/** Tenants remembered at most; the one noted least recently goes first (tenant names come from clients). */
const MAX_TENANTS = 1000;

/** A tenant's refusals over one window. */
export interface TenantRefusalCounts {
  /** 429 rate_limited by a limits.tenant limit. */
  throttled: number;
  /** 507 quota_exceeded. */
  refused: number;
}

export interface TenantRefusalRow {
  tenant: string;
  last15m: TenantRefusalCounts;
  last24h: TenantRefusalCounts;
  /** The limit of the last throttling, as the 429 named it (e.g. "100 uploads per minute"). */
  lastLimit: string | null;
}

interface Entry {
  minutes: Map<number, TenantRefusalCounts>;
  lastLimit: string | null;
}

/**
 * Per-tenant throttled (429) and quota-refused (507) counts per minute, kept
 * a day, for /usage, the status page and the alert "tenant T was throttled N
 * times in the last 15 min": bounded to MAX_TENANTS tenants, in this
 * process's memory (a restart starts over).
 */
export class TenantRefusals {
  private readonly tenants = new Map<string, Entry>();

  constructor(private readonly now: () => number) {}

  throttled(tenant: string, limit: string): void {
    const entry = this.count(tenant, 'throttled');
    entry.lastLimit = limit;
  }

  quotaRefused(tenant: string): void {
    this.count(tenant, 'refused');
  }

  /** Every remembered tenant with a refusal in the last 24 h, most refused in 15 min first. */
  rows(): TenantRefusalRow[] {
    const rows: TenantRefusalRow[] = [];
    for (const tenant of [...this.tenants.keys()]) {
      const row = this.row(tenant);
      if (row.last24h.throttled + row.last24h.refused > 0) rows.push(row);
      else this.tenants.delete(tenant);
    }
    return rows.sort((a, b) => (b.last15m.throttled + b.last15m.refused) - (a.last15m.throttled + a.last15m.refused) ||
      (b.last24h.throttled + b.last24h.refused) - (a.last24h.throttled + a.last24h.refused));
  }

  /** One tenant's counts (zeros when none). */
  row(tenant: string): TenantRefusalRow {
    const entry = this.tenants.get(tenant);
    const current = Math.floor(this.now() / MINUTE_MS);
    const sum = (windowMs: number): TenantRefusalCounts => {
      const oldest = current - Math.ceil(windowMs / MINUTE_MS) + 1;
      const out = { throttled: 0, refused: 0 };
      for (const [minute, counts] of entry?.minutes ?? []) {
        if (minute < oldest) continue;
        out.throttled += counts.throttled;
        out.refused += counts.refused;
      }
      return out;
    };
    return { tenant, last15m: sum(15 * MINUTE_MS), last24h: sum(DAY_MS), lastLimit: entry?.lastLimit ?? null };
  }

  private count(tenant: string, kind: keyof TenantRefusalCounts): Entry {
    const minute = Math.floor(this.now() / MINUTE_MS);
    let entry = this.tenants.get(tenant);
    if (entry) this.tenants.delete(tenant);
    entry ??= { minutes: new Map(), lastLimit: null };
    // Re-inserted: the Map's order is "least recently noted first".
    this.tenants.set(tenant, entry);
    const counts = entry.minutes.get(minute) ?? { throttled: 0, refused: 0 };
    counts[kind]++;
    entry.minutes.set(minute, counts);
    const oldest = minute - DAY_MS / MINUTE_MS + 1;
    for (const m of entry.minutes.keys()) if (m < oldest) entry.minutes.delete(m);
    while (this.tenants.size > MAX_TENANTS) this.tenants.delete(this.tenants.keys().next().value!);
    return entry;
  }
}
