import type { Scenario, Variant } from './scenarios.js';
import type { WrkResult } from './wrk.js';

/** One wrk run, plus the CPU the server used meanwhile (% of one core; a front: nginx and its node). */
export type RunResult = WrkResult & { serverCpuPercent: number; otherCpuPercent: number };

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
  /** rps / rps of each nginx baseline, keyed by its label. */
  ratios: Record<string, number>;
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
      ratios: {},
      problems: v.problems,
    };
  });
  const baselines = rows.filter((r) => r.baseline);
  for (const row of rows) {
    for (const base of baselines) row.ratios[base.label] = base.rps > 0 ? row.rps / base.rps : NaN;
  }
  return rows;
}

export function errorCount(r: WrkResult): number {
  const e = r.errors;
  return e.connect + e.read + e.write + e.status + e.timeout;
}

/** The table printed at the end of a run. */
export function renderTable(results: ScenarioResult[]): string {
  const header = ['scenario', 'target', 'rps', '±', 'MB/s', 'p50 ms', 'p99 ms', 'errors', 'cpu srv', 'cpu wrk', 'other', '/nginx-1w', '/nginx-auto'];
  const lines: string[][] = [header];
  for (const result of results) {
    const rows = summarize(result);
    const [w1, auto] = rows.filter((r) => r.baseline).map((r) => r.label);
    rows.forEach((row, i) => {
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
        `${Math.round(row.clientCpuPercent)}%`,
        `${Math.round(row.otherCpuPercent)}%`,
        row.baseline ? '' : ratio(w1 ? row.ratios[w1] : NaN),
        row.baseline ? '' : ratio(auto ? row.ratios[auto] : NaN),
      ]);
    });
  }
  const widths = header.map((_, col) => Math.max(...lines.map((l) => l[col].length)));
  const leftAligned = new Set([0, 1]);
  const out = lines.map((l) => l.map((cell, col) => (leftAligned.has(col) ? cell.padEnd(widths[col]) : cell.padStart(widths[col]))).join('  ').trimEnd());
  out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const problems = results.flatMap((r) => r.variants.flatMap((v) => v.problems.map((p) => `(!) ${r.scenario.title} / ${v.variant.label}: ${p}`)));
  const references = results.filter((r) => r.scenario.referenceNginxRps)
    .map((r) => `${r.scenario.title} ~${fmt(r.scenario.referenceNginxRps!)} rps`);
  return [
    ...out,
    '',
    'rps, MB/s (payload), p50/p99: medians over rounds; ±: rps spread (max-min)/median; errors: socket errors and non-2xx/3xx, all rounds.',
    'cpu srv / cpu wrk / other: CPU time of the server (nginx master+workers; node; front = nginx + node), of wrk, and of everything else',
    '  on the machine (other processes, kernel threads), in % of one core. A large "other" means the row was measured on a busy machine.',
    '/nginx-1w, /nginx-auto: rps of the row divided by plain nginx (static + WebDAV) with 1 worker and with worker_processes auto.',
    ...(references.length ? [`Reference nginx (issue; 2 cores, loopback, wrk 2 threads, 10 s): ${references.join('; ')}.`] : []),
    ...problems,
  ].join('\n');
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function fmt(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}

function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : '-';
}
