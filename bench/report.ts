import { BASELINE_OF, type Scenario, type Variant } from './scenarios.js';
import type { WrkResult } from './wrk.js';

/**
 * One wrk run, plus the CPU the server used meanwhile (seconds and % of one
 * core; a front: nginx and its node; each with its children) and that CPU
 * per request in ms (PUT: per upload stored).
 */
export type RunResult = WrkResult & { serverCpuSec: number; serverCpuPercent: number; otherCpuPercent: number; cpuMsPerRequest: number };

/** A baseline below this share of its usual rps (scenarios.ts) was slowed by something else: ratios against it are void. */
export const USUAL_FLOOR = 0.6;

/** One variant of one scenario over all rounds. */
export interface VariantResult {
  variant: Variant;
  rounds: RunResult[];
  /** Set when a check after a run found something wrong (stored file count, status errors). */
  problems: string[];
}

export interface ScenarioResult {
  scenario: Scenario;
  variants: VariantResult[];
}

export interface Summary {
  label: string;
  baseline: boolean;
  rounds: number;
  /** Medians over rounds. */
  rps: number;
  mbPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** (max - min) / median of rps over rounds. */
  spread: number;
  errors: number;
  /** Medians over rounds, % of one core. */
  serverCpuPercent: number;
  clientCpuPercent: number;
  /** The rest of the machine's busy CPU during the runs: other processes (noise). */
  otherCpuPercent: number;
  /** Median server CPU per request (ms). */
  cpuMsPerRequest: number;
  /** rps / rps of each nginx baseline, keyed by its label. */
  ratios: Record<string, number>;
  /** The nginx this row is compared with (scenarios.ts BASELINE_OF), its rps ratio, and CPU per request ÷ nginx's. */
  against?: string;
  ratio: number;
  cpuRatio: number;
  /** Why `ratio` is void (its nginx far below its usual figure), if it is. */
  voided?: string;
  problems: string[];
}

export function summarize(result: ScenarioResult): Summary[] {
  const rows = result.variants.filter((v) => v.rounds.length > 0).map((v): Summary => {
    const rps = median(v.rounds.map((r) => r.rps));
    const all = v.rounds.map((r) => r.rps);
    return {
      label: v.variant.label,
      baseline: v.variant.baseline,
      rounds: v.rounds.length,
      rps,
      mbPerSec: (rps * result.scenario.size) / 1e6,
      p50Ms: median(v.rounds.map((r) => r.p50Ms)),
      p99Ms: median(v.rounds.map((r) => r.p99Ms)),
      spread: rps > 0 ? (Math.max(...all) - Math.min(...all)) / rps : 0,
      errors: v.rounds.reduce((sum, r) => sum + errorCount(r), 0),
      serverCpuPercent: median(v.rounds.map((r) => r.serverCpuPercent)),
      clientCpuPercent: median(v.rounds.map((r) => r.clientCpuPercent)),
      otherCpuPercent: median(v.rounds.map((r) => r.otherCpuPercent)),
      cpuMsPerRequest: median(v.rounds.map((r) => r.cpuMsPerRequest ?? NaN)),
      ratios: {},
      ratio: NaN,
      cpuRatio: NaN,
      problems: v.problems,
    };
  });
  const baselines = rows.filter((r) => r.baseline);
  const voided = new Map<string, string>();
  for (const base of result.variants.filter((v) => v.variant.baseline && v.rounds.length > 0)) {
    const usual = result.scenario.usualNginxRps?.[base.variant.target];
    const row = rows.find((r) => r.label === base.variant.label)!;
    if (usual !== undefined && row.rps < USUAL_FLOOR * usual) {
      voided.set(row.label, `${row.label} at ${Math.round((100 * row.rps) / usual)} % of its usual ${fmt(usual)} rps on this VM`);
    }
  }
  for (const [i, row] of rows.entries()) {
    for (const base of baselines) row.ratios[base.label] = base.rps > 0 ? row.rps / base.rps : NaN;
    if (row.baseline) continue;
    const target = result.variants.filter((v) => v.rounds.length > 0)[i].variant.target;
    const base = rows.find((r) => r.baseline && result.variants.find((v) => v.variant.label === r.label)?.variant.target === BASELINE_OF[target]);
    if (!base) continue;
    row.against = base.label;
    row.ratio = row.ratios[base.label];
    row.cpuRatio = base.cpuMsPerRequest > 0 ? row.cpuMsPerRequest / base.cpuMsPerRequest : NaN;
    row.voided = voided.get(base.label);
  }
  return rows;
}

export function errorCount(r: WrkResult): number {
  const e = r.errors;
  return e.connect + e.read + e.write + e.status + e.timeout;
}

/** The table printed at the end of a run. */
export function renderTable(results: ScenarioResult[]): string {
  const header = ['scenario', 'target', 'rps', '±', 'MB/s', 'p50 ms', 'p99 ms', 'errors', 'cpu srv', 'ms cpu/req', 'cpu wrk', 'other', '÷ nginx', 'cpu/req ÷ nginx'];
  const lines: string[][] = [header];
  const voids = new Set<string>();
  for (const result of results) {
    const rows = summarize(result);
    rows.forEach((row, i) => {
      if (row.voided) voids.add(`${result.scenario.title}: ${row.voided}; ratios against it void`);
      lines.push([
        i === 0 ? result.scenario.title : '',
        row.label + (row.problems.length ? ' (!)' : ''),
        fmt(row.rps),
        `${Math.round(row.spread * 100)}%`,
        fmt(row.mbPerSec),
        row.p50Ms.toFixed(2),
        row.p99Ms.toFixed(2),
        String(row.errors),
        `${Math.round(row.serverCpuPercent)}%`,
        cpuMs(row.cpuMsPerRequest),
        `${Math.round(row.clientCpuPercent)}%`,
        `${Math.round(row.otherCpuPercent)}%`,
        row.baseline ? '' : `${row.voided ? 'void' : ratio(row.ratio)}${row.against ? ` (${short(row.against)})` : ''}`,
        row.baseline ? '' : ratio(row.cpuRatio),
      ]);
    });
  }
  const out = alignColumns(lines, 2);
  const problems = results.flatMap((r) => r.variants.flatMap((v) => v.problems.map((p) => `(!) ${r.scenario.title} / ${v.variant.label}: ${p}`)));
  const references = results.filter((r) => r.scenario.referenceNginxRps)
    .map((r) => `${r.scenario.title} ~${fmt(r.scenario.referenceNginxRps!)} rps`);
  return [
    ...out,
    '',
    'rps, MB/s (payload), p50/p99: medians over rounds; ±: rps spread (max-min)/median; errors: socket errors and non-2xx/3xx, all rounds.',
    'cpu srv / cpu wrk / other: CPU time of the server (nginx master+workers; node primary+workers; front = nginx + node), of wrk, and of everything else',
    '  on the machine (other processes, kernel threads), in % of one core. A large "other" means the row was measured on a busy machine.',
    'ms cpu/req: server CPU (user+system, /proc) per request; PUT: per upload stored. Medians over rounds.',
    '÷ nginx: rps of the row divided by plain nginx (static + WebDAV): workers=1 by nginx 1 worker (1w), workers=auto and the front by',
    `  worker_processes auto (auto); "void" when that nginx ran below ${USUAL_FLOOR * 100} % of its usual figure (someone else had the CPU). cpu/req ÷ nginx: the same for CPU per request.`,
    ...voids,
    ...(references.length ? [`Reference nginx (issue; 2 cores, loopback, wrk 2 threads, 10 s): ${references.join('; ')}.`] : []),
    ...problems,
  ].join('\n');
}

/**
 * Lines of cells as aligned text: the first `leftColumns` columns padded on
 * the right (names), the others on the left (figures); a rule under the
 * first line (the header).
 */
export function alignColumns(lines: string[][], leftColumns: number): string[] {
  const widths = lines[0].map((_, col) => Math.max(...lines.map((l) => l[col].length)));
  const out = lines.map((l) => l.map((cell, col) => (col < leftColumns ? cell.padEnd(widths[col]) : cell.padStart(widths[col]))).join('  ').trimEnd());
  out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return out;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function fmt(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}

export function cpuMs(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return value >= 1 ? value.toFixed(2) : value.toFixed(3);
}

function short(label: string): string {
  return label.includes('auto') ? 'auto' : '1w';
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : '-';
}
