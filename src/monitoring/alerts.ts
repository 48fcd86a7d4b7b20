import { formatBytes } from '../config/units.js';
import type { DiskState } from '../disk/disk-guard.js';
import type { FillRate } from './fill-rate.js';
import type { RecentRefusals } from './refusal-log.js';

const GiB = 1024 ** 3;

/** Everything the alert sentences look at; built by the usage report. */
export interface AlertInput {
  nowMs: number;
  disk: { totalBytes: number; freeBytes: number; usedPercent: number; reserveBytes: number; state: DiskState };
  highWatermarkPercent: number;
  lowWatermarkPercent: number;
  fillRate: FillRate;
  /** Top tenants with their growth over 24 h (null: no history yet). */
  tenants: readonly { tenant: string; bytes: number; growth24hBytes: number | null }[];
  /** Growth of all stored bytes over the same 24 h; null without history. */
  totalGrowth24hBytes: number | null;
  refusals: RecentRefusals;
  /** Tenants throttled (429) recently, with the limit of their last throttling; absent: none. */
  throttledTenants?: readonly { tenant: string; throttled15m: number; limit: string | null }[];
  tmp: { files: number; bytes: number; oldestSeconds: number | null };
  /** Age after which a tmp entry is stale (eviction.tmpMaxAge). */
  tmpMaxAgeMs: number;
  /** The last eviction run, whatever it removed (a failure shows even when it removed nothing). */
  lastEviction: { at: number; error: string | null } | null;
  /** The last `nanocdn scrub` run: when, and the bad files it found. */
  scrub?: { at: number; bad: number; quarantined: number } | null;
}

/** Thresholds of the alert sentences (the Prometheus rules use the same ones). */
export interface AlertPolicy {
  /** "disk full in N h" only when N is at most this. Default 24. */
  fillHorizonHours: number;
  /** A tenant grew abnormally: more than this many bytes (default min(10 GiB, 5 % of the disk))… */
  tenantGrowthMinBytes?: number;
  /** …and more than this fraction of what it held 24 h ago. Default 0.5. */
  tenantGrowthMinRatio: number;
}

export const DEFAULT_ALERT_POLICY: AlertPolicy = { fillHorizonHours: 24, tenantGrowthMinRatio: 0.5 };

/** Hours to full at or under which "disk full in N h" is critical rather than a warning. */
const CRITICAL_FILL_HOURS = 6;

/**
 * One alert sentence and how bad it is: `critical` when writes are refused
 * for everyone now or within CRITICAL_FILL_HOURS (disk inside the reserve,
 * insufficient_storage refusals, full within 6 h), `warning` otherwise.
 */
export interface Alert {
  severity: 'critical' | 'warning';
  text: string;
}

/** The sentences of alertList(), in the same order (GET /usage `alerts`). */
export function alertsFor(input: AlertInput, policy: AlertPolicy = DEFAULT_ALERT_POLICY): string[] {
  return alertList(input, policy).map((alert) => alert.text);
}

/**
 * What is wrong right now, critical first, then in the order below; empty
 * when all is well. Pure: the same input always gives the same alerts.
 */
export function alertList(input: AlertInput, policy: AlertPolicy = DEFAULT_ALERT_POLICY): Alert[] {
  const alerts: Alert[] = [];
  const critical = (text: string) => alerts.push({ severity: 'critical', text });
  const warning = (text: string) => alerts.push({ severity: 'warning', text });
  const { disk, fillRate } = input;
  if (disk.state === 'critical') {
    critical(`disk critical: ${formatBytes(disk.freeBytes)} free, below the ${formatBytes(disk.reserveBytes)} reserve — writes refused`);
  } else if (disk.state === 'warning') {
    // The guard stays in warning from the high watermark down to the low one (hysteresis).
    warning(`disk ${disk.usedPercent.toFixed(1)} % used (warning from ${input.highWatermarkPercent} % until below ${input.lowWatermarkPercent} %) — evicting evictable classes`);
  }
  if (disk.state !== 'critical' && fillRate.hoursToFull !== null && fillRate.bytesPerHour !== null &&
      fillRate.hoursToFull <= policy.fillHorizonHours) {
    (fillRate.hoursToFull <= CRITICAL_FILL_HOURS ? critical : warning)(
      `disk full in ${fillRate.hoursToFull.toFixed(1)} h at ${formatBytes(fillRate.bytesPerHour)}/h`);
  }
  if (input.refusals.count > 0) {
    const reasons = Object.entries(input.refusals.byReason).sort((a, b) => b[1] - a[1])
      .map(([reason, n]) => `${reason} ${count(n)}`).join(', ');
    (input.refusals.byReason.insufficient_storage ? critical : warning)(
      `${plural(input.refusals.count, 'write')} refused in the last 15 min (${reasons})`);
  }
  for (const text of tenantAlerts(input, policy)) warning(text);
  // The most throttled few: a storm across many tenants must not bury the other alerts.
  for (const t of (input.throttledTenants ?? []).filter((x) => x.throttled15m > 0).sort((a, b) => b.throttled15m - a.throttled15m).slice(0, 3)) {
    warning(`tenant ${t.tenant} was throttled ${plural(t.throttled15m, 'time')} in the last 15 min (${t.limit ? `limit ${t.limit}` : 'limits.tenant'})`);
  }
  const { tmp } = input;
  if (tmp.oldestSeconds !== null && tmp.oldestSeconds * 1000 > input.tmpMaxAgeMs) {
    warning(`tmp holds ${plural(tmp.files, 'file')} (${formatBytes(tmp.bytes)}), the oldest ${formatAge(tmp.oldestSeconds * 1000)} old: ` +
      `uploads older than ${formatAge(input.tmpMaxAgeMs)} are not being swept`);
  }
  if (input.lastEviction?.error) {
    warning(`eviction failed at ${clock(input.lastEviction.at)}: ${input.lastEviction.error}`);
  }
  if (input.scrub && input.scrub.bad > 0) {
    warning(`scrub at ${clock(input.scrub.at)} found ${plural(input.scrub.bad, 'bad file')}${input.scrub.quarantined ? ` (${count(input.scrub.quarantined)} quarantined)` : ''}: ` +
      '`nanocdn scrub --json` lists them');
  }
  // Stable: within a severity the order above stays.
  return [...alerts.filter((a) => a.severity === 'critical'), ...alerts.filter((a) => a.severity === 'warning')];
}

function tenantAlerts(input: AlertInput, policy: AlertPolicy): string[] {
  const minBytes = policy.tenantGrowthMinBytes ?? Math.min(10 * GiB, 0.05 * input.disk.totalBytes);
  const alerts: string[] = [];
  for (const t of input.tenants) {
    if (t.growth24hBytes === null || t.growth24hBytes <= 0 || t.growth24hBytes < minBytes) continue;
    const before = t.bytes - t.growth24hBytes;
    if (t.growth24hBytes <= policy.tenantGrowthMinRatio * before) continue;
    const share = input.totalGrowth24hBytes !== null && input.totalGrowth24hBytes > 0
      ? ` (${Math.round((100 * t.growth24hBytes) / input.totalGrowth24hBytes)} % of growth)` : '';
    alerts.push(`tenant ${t.tenant} grew ${formatBytes(t.growth24hBytes)} in 24 h${share}`);
  }
  return alerts;
}

/**
 * 3102 → "3,102". By hand, not toLocaleString: the first Intl formatter
 * maps about 8 MB of ICU data into the process for good.
 */
function count(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** (1, 'file') → "1 file"; (3102, 'file') → "3,102 files". */
function plural(n: number, noun: string): string {
  return `${count(n)} ${noun}${n === 1 ? '' : 's'}`;
}

/** 5400000 → "1.5 h"; under an hour in minutes, over two days in days. */
export function formatAge(ms: number): string {
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 48 * 3_600_000) return `${Number((ms / 3_600_000).toFixed(1))} h`;
  return `${Number((ms / 86_400_000).toFixed(1))} d`;
}

/** HH:MM in UTC, as the logs print it. */
function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 16);
}
