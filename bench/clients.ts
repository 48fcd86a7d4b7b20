/**
 * `npm run bench:clients`: what many clients cost the node and nginx, in the
 * same run (issue 17). For each scenario, each target is started fresh on
 * 127.0.0.1, given its fixtures, then held under the load of a separate
 * process (bench/clients-load.ts) while a probe GETs a 10 KB file one
 * request at a time and the server's RSS (process + nginx workers, from
 * /proc) is sampled every 100 ms.
 *
 *   idle             RSS 3 s after start, nothing asked but /healthz
 *   stalled readers  N clients GET a 30 MB file, read the first bytes, stop reading; held 10 s
 *   slow uploaders   N clients PUT 16 KiB at 1 KiB/s (about 16 s); answers counted
 *   idle keep-alive  N connections that made one GET and stay open; held 10 s
 *   uploads          64 chunked PUTs of 100 MB at once, as fast as the server takes them
 *
 *   npm run bench:clients                   N = 1,000 (keep-alive 10,000), uploads 64 × 100 MB; 3 rounds
 *   npm run bench:clients -- --quick        N / 10, uploads 16 × 100 MB; 1 round
 *   --rounds N: every scenario and target N times; the table has medians, with the spread (min–max) of the
 *            growth and the probe p99, and the goals are judged on the medians (a p99 of ~200 probes moves by tens of ms
 *            from run to run on a 2-core machine, for nginx as for the node)
 *   options: --only TEXT (a scenario's id alone, else any scenario or target containing it)  --cli PATH (another build of the node; --no-cap for
 *            one older than http.maxConnections)  --keep (keep the temp dir)
 *            --workers N|auto (the node's `workers`; default 1: one process, as nginx's 1 worker;
 *            with more, RSS is the primary's and all workers' together)
 *
 * Bounded: at most N connections per scenario, every process stopped by pid
 * at the end, on error and on ^C; the temp dir is removed. The node raises
 * its own soft fd limit to the hard one at start; nginx gets
 * worker_rlimit_nofile. Timings and memory here are figures, never pass/fail.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadKind, LoadReport, LoadSpec } from './clients-load.js';
import { childPids, installExitHandlers, stopAll, stopProcess } from './processes.js';
import { NO_TENANT_LIMITS, startNginx, startNode, type Target } from './targets.js';
import { detectTools, missingToolsMessage } from './tools.js';

const MB = 1e6;
const BIG = 'pub/bench/big-30mb.bin';
const PROBE = 'pub/bench/probe-10kb.bin';
const HOLD_MS = 10_000;

interface Goal { rssGrowthMB?: number; peakRssMB?: number; rssMB?: number; probeP99Ms?: number; no5xx?: boolean }

interface Scenario {
  id: string;
  title: string;
  kind: LoadKind | 'idle';
  count: (quick: boolean) => number;
  path: (target: Target) => string;
  bytes?: number;
  goal: Goal;
}

const SCENARIOS: Scenario[] = [
  { id: 'idle', title: 'idle', kind: 'idle', count: () => 0, path: () => '', goal: { rssMB: 80 } },
  { id: 'stalled', title: 'stalled readers', kind: 'stalled-readers', count: (q) => (q ? 100 : 1000), path: () => `/${BIG}`, goal: { rssGrowthMB: 64, probeP99Ms: 50 } },
  { id: 'slow-up', title: 'slow uploaders', kind: 'slow-uploaders', count: (q) => (q ? 100 : 1000), path: (t) => uploadPrefix(t, 'slow'), bytes: 16 << 10, goal: { no5xx: true, rssGrowthMB: 200 } },
  { id: 'keepalive', title: 'idle keep-alive', kind: 'idle-keepalive', count: (q) => (q ? 1000 : 10_000), path: () => `/${PROBE}`, goal: { rssGrowthMB: 300, probeP99Ms: 50 } },
  { id: 'uploads', title: 'uploads 100 MB', kind: 'uploads', count: (q) => (q ? 16 : 64), path: (t) => uploadPrefix(t, 'up'), bytes: 100 * MB, goal: { peakRssMB: 150 } },
];

interface Options { quick: boolean; only?: string; cli?: string; keep: boolean; noCap: boolean; workers: string; rounds?: number }

interface Row {
  scenario: string; target: string; count: number; outcomes: Record<string, number>;
  baselineMB: number; peakMB: number; growthMB: number;
  probe: { count: number; errors: number; p50Ms: number; p99Ms: number; maxMs: number };
  elapsedMs: number; goal: Goal; met: boolean | null; notes: string[];
  /** Over rounds (several): min and max of the peak, the growth and the probe p99; the fields above are medians. */
  spread?: { rounds: number; peakMB: [number, number]; growthMB: [number, number]; probeP99Ms: [number, number] };
}

function uploadPrefix(target: Target, what: string): string {
  return target.putPath(`pub/bench/${what}-`);
}

function parseArgs(argv: string[]): Options {
  const options: Options = { quick: false, keep: false, noCap: false, workers: '1' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--keep') options.keep = true;
    else if (arg === '--no-cap') options.noCap = true;
    else if (arg === '--only' && argv[i + 1]) options.only = argv[++i];
    else if (arg === '--cli' && argv[i + 1]) options.cli = argv[++i];
    else if (arg === '--workers' && argv[i + 1]) options.workers = argv[++i];
    else if (arg === '--rounds' && Number(argv[i + 1]) >= 1) options.rounds = Math.floor(Number(argv[++i]));
    else {
      process.stderr.write('usage: npm run bench:clients -- [--quick] [--rounds N] [--only TEXT] [--workers N|auto] [--cli dist/src/cli.js] [--no-cap] [--keep]\n');
      process.exit(arg === '-h' || arg === '--help' ? 0 : 2);
    }
  }
  return options;
}

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

/** Resident memory of a process and its direct children (nginx workers), in bytes. */
function rssBytes(pid: number): number {
  let sum = 0;
  for (const p of [pid, ...childPids(pid)]) {
    try {
      const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1];
      sum += Number(kb ?? 0) * 1024;
    } catch { /* exited */ }
  }
  return sum;
}

/**
 * Proportional set size of a process and its direct children, in bytes:
 * a shared page (the `node` binary's, ~41 MB per process) is divided among
 * every process that maps it, so a clustered node's processes do not count
 * one binary three times over. Other processes of the same binary on the
 * machine (another node, a test run) take their share too: read it on a
 * machine with nothing else running.
 */
function pssBytes(pid: number): number {
  let sum = 0;
  for (const p of [pid, ...childPids(pid)]) {
    try {
      const kb = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'))?.[1];
      sum += Number(kb ?? 0) * 1024;
    } catch { /* exited */ }
  }
  return sum;
}

/** Samples RSS every 100 ms until stopped; returns the peak. */
function sampleRss(pid: number): { stop(): number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => { peak = Math.max(peak, rssBytes(pid)); }, 100);
  return { stop() { clearInterval(timer); return Math.max(peak, rssBytes(pid)); } };
}

/** GETs the probe file one request at a time (one keep-alive connection, 50 ms apart) until stopped. */
function runProbe(target: Target): { stop(): Promise<Row['probe']> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(`/${PROBE}`, target.url);
  const times: number[] = [];
  let errors = 0;
  let running = true;
  const once = () => new Promise<void>((resolve) => {
    const start = process.hrtime.bigint();
    const req = request(url, { agent, timeout: 10_000 }, (res) => {
      res.resume();
      res.once('end', () => {
        if (res.statusCode === 200) times.push(Number(process.hrtime.bigint() - start) / 1e6); else errors++;
        resolve();
      });
    });
    req.once('timeout', () => req.destroy(new Error('probe timeout')));
    req.once('error', () => { errors++; resolve(); });
    req.end();
  });
  const loop = (async () => {
    while (running) {
      await once();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      agent.destroy();
      const sorted = [...times].sort((a, b) => a - b);
      const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);
      return { count: times.length, errors, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted.at(-1) ?? NaN };
    },
  };
}

/** Runs one load in a child process; resolves with its report. */
async function runLoad(loadPath: string, spec: LoadSpec, holdMs: number, whileHeld: () => void): Promise<LoadReport> {
  const child: ChildProcess = fork(loadPath, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pid = child.pid!;
  try {
    const messages: Array<{ type: string }> = [];
    let wake = () => {};
    child.on('message', (m: { type: string }) => { messages.push(m); wake(); });
    const next = (type: string, timeoutMs: number) => new Promise<{ type: string }>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`load ${spec.kind}: no "${type}" within ${timeoutMs} ms`)), timeoutMs);
      const check = () => {
        const i = messages.findIndex((m) => m.type === type);
        if (i >= 0) { clearTimeout(deadline); resolve(messages.splice(i, 1)[0]); }
      };
      wake = check;
      check();
      child.once('exit', () => { clearTimeout(deadline); reject(new Error(`load ${spec.kind} exited early`)); });
    });
    child.send({ cmd: 'start', load: spec });
    await next('ready', 180_000);
    whileHeld();
    if (spec.kind === 'uploads' || spec.kind === 'slow-uploaders') return await next('done', 600_000) as LoadReport;
    await new Promise((resolve) => setTimeout(resolve, holdMs));
    child.send({ cmd: 'stop' });
    return await next('done', 30_000) as LoadReport;
  } finally {
    if (child.exitCode === null) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }
}

async function startTarget(kind: 'node' | 'nginx', runDir: string, cliPath: string, options: Options): Promise<Target> {
  if (kind === 'nginx') {
    const root = join(runDir, 'root');
    mkdirSync(join(root, 'pub', 'bench'), { recursive: true });
    return startNginx({ id: 'nginx', label: 'nginx', workerProcesses: '1', root, workDir: runDir, workerConnections: 12_000, rlimitNofile: 30_000 });
  }
  return startNode({
    id: 'node', label: 'node', cliPath, dataDir: join(runDir, 'data'), token: 'bench-token-0123456789abcdef', workDir: runDir,
    env: { NANOCDN_WORKERS: options.workers },
    config: {
      durability: 'none',
      disk: { minFreeBytes: 0, minFreePercent: 0 },
      // Memory per hostile client, like nginx (which has no per-tenant limits): thousands of slow uploaders of one tenant would get 429.
      limits: { tenant: NO_TENANT_LIMITS },
      // nginx's keepalive_timeout default, so held keep-alive connections are held by both.
      // (--no-cap: a build from before http.maxConnections existed.)
      http: { keepAliveTimeout: '75s', ...(options.noCap ? {} : { maxConnections: 12_000 }) },
    },
  });
}

/** The probe file, and the 30 MB file when readers need it (a 30 MB upload alone leaves the node's RSS higher). */
async function placeFixtures(target: Target, runDir: string, big: boolean): Promise<void> {
  for (const [name, size] of [[PROBE, 10_240], ...(big ? [[BIG, 30 * MB] as const] : [])] as const) {
    const body = randomBytes(size);
    if (target.kind === 'nginx') { writeFileSync(join(runDir, 'root', name), body); continue; }
    const res = await fetch(new URL(target.putPath(name), target.url), { method: 'PUT', body });
    if (res.status !== 201) throw new Error(`PUT ${name} on ${target.label}: HTTP ${res.status} ${await res.text()}`);
  }
}

async function measure(scenario: Scenario, kind: 'node' | 'nginx', options: Options, paths: { workDir: string; cliPath: string; loadPath: string }): Promise<Row> {
  const runDir = join(paths.workDir, `${scenario.id}-${kind}`);
  mkdirSync(runDir, { recursive: true });
  const target = await startTarget(kind, runDir, paths.cliPath, options);
  const started = Date.now();
  const notes: string[] = [];
  try {
    if (scenario.kind === 'idle') {
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const rss = rssBytes(target.pid) / MB;
      notes.push(`PSS ${(pssBytes(target.pid) / MB).toFixed(0)} MB`);
      return row(scenario, target, 0, {}, rss, rss, { count: 0, errors: 0, p50Ms: NaN, p99Ms: NaN, maxMs: NaN }, Date.now() - started, notes);
    }
    await placeFixtures(target, runDir, scenario.kind === 'stalled-readers');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const baseline = rssBytes(target.pid);
    const sampler = sampleRss(target.pid);
    const count = scenario.count(options.quick);
    let probe: ReturnType<typeof runProbe> | undefined;
    const spec: LoadSpec = { kind: scenario.kind, port: Number(new URL(target.url).port), count, path: scenario.path(target), bytes: scenario.bytes };
    const report = await runLoad(paths.loadPath, spec, HOLD_MS, () => { probe = runProbe(target); });
    const peak = sampler.stop();
    const probed = await probe!.stop();
    return row(scenario, target, count, report.outcomes, baseline / MB, peak / MB, probed, report.elapsedMs, notes);
  } finally {
    await stopProcess(target.pid, 15_000);
    if (!options.keep) rmSync(runDir, { recursive: true, force: true });
  }
}

function row(scenario: Scenario, target: Target, count: number, outcomes: Record<string, number>, baselineMB: number, peakMB: number,
  probe: Row['probe'], elapsedMs: number, notes: string[]): Row {
  const r: Row = { scenario: scenario.title, target: target.label, count, outcomes, baselineMB, peakMB, growthMB: peakMB - baselineMB, probe, elapsedMs, goal: scenario.goal, met: null, notes };
  r.met = target.kind === 'node' ? meets(r) : null;
  return r;
}

/** Whether a node row meets its scenario's goal. */
function meets(r: Row): boolean {
  const { goal: g, outcomes, peakMB, growthMB, probe } = r;
  const fivexx = Object.entries(outcomes).filter(([k]) => k.startsWith('5')).reduce((n, [, v]) => n + v, 0);
  return [
    g.rssMB === undefined || peakMB <= g.rssMB,
    g.rssGrowthMB === undefined || growthMB <= g.rssGrowthMB,
    g.peakRssMB === undefined || peakMB <= g.peakRssMB,
    g.probeP99Ms === undefined || (probe.p99Ms < g.probeP99Ms && probe.errors === 0),
    !g.no5xx || fivexx === 0,
  ].every(Boolean);
}

/** One row of several rounds of a scenario and target: medians; answers and probe errors summed; the spread kept. */
function combine(rounds: Row[]): Row {
  if (rounds.length === 1) return rounds[0];
  const med = (f: (r: Row) => number) => median(rounds.map(f));
  const range = (f: (r: Row) => number): [number, number] => [Math.min(...rounds.map(f)), Math.max(...rounds.map(f))];
  const outcomes: Record<string, number> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + v;
  const first = rounds[0];
  const combined: Row = {
    ...first, outcomes,
    baselineMB: med((r) => r.baselineMB), peakMB: med((r) => r.peakMB), growthMB: med((r) => r.growthMB),
    probe: {
      count: rounds.reduce((n, r) => n + r.probe.count, 0), errors: rounds.reduce((n, r) => n + r.probe.errors, 0),
      p50Ms: med((r) => r.probe.p50Ms), p99Ms: med((r) => r.probe.p99Ms), maxMs: Math.max(...rounds.map((r) => r.probe.maxMs)),
    },
    elapsedMs: rounds.reduce((n, r) => n + r.elapsedMs, 0),
    notes: rounds.flatMap((r) => r.notes),
    spread: { rounds: rounds.length, peakMB: range((r) => r.peakMB), growthMB: range((r) => r.growthMB), probeP99Ms: range((r) => r.probe.p99Ms) },
  };
  combined.met = first.met === null ? null : meets(combined);
  return combined;
}

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function goalText(g: Goal): string {
  return [
    g.rssMB !== undefined && `RSS ≤ ${g.rssMB} MB`,
    g.rssGrowthMB !== undefined && `growth ≤ ${g.rssGrowthMB} MB`,
    g.peakRssMB !== undefined && `peak ≤ ${g.peakRssMB} MB`,
    g.probeP99Ms !== undefined && `p99 < ${g.probeP99Ms} ms`,
    g.no5xx && 'no 5xx',
  ].filter(Boolean).join(', ');
}

function table(rows: Row[]): string {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const lines = [
    '| scenario | target | clients | answers | RSS before (MB) | peak (MB) | growth (MB) | probe p50 / p99 / max (ms) | probe errors | goal (node) | met |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const answers = Object.entries(r.outcomes).map(([k, v]) => `${k}: ${v}`).join(', ') || '–';
    // With several rounds: the median, then (min–max).
    const withSpread = (value: number, range: [number, number] | undefined, d = 0) =>
      (range && Number.isFinite(value) ? `${f(value, d)} (${f(range[0], d)}–${f(range[1], d)})` : f(value, d));
    const peak = withSpread(r.peakMB, r.spread?.peakMB);
    const growth = withSpread(r.growthMB, r.spread?.growthMB);
    const p99 = withSpread(r.probe.p99Ms, r.spread?.probeP99Ms, 1);
    lines.push(`| ${r.scenario} | ${r.target} | ${r.count.toLocaleString('en')} | ${answers} | ${f(r.baselineMB)} | ${peak} | ${growth} | ` +
      `${f(r.probe.p50Ms, 1)} / ${p99} / ${f(r.probe.maxMs, 1)} | ${r.probe.errors} | ${r.met === null ? '' : goalText(r.goal)} | ${r.met === null ? '' : r.met ? 'met' : 'not met'} |`);
  }
  for (const r of rows) if (r.notes.length) lines.push('', `${r.scenario}, ${r.target}: ${[...new Set(r.notes)].join('; ')}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const missing = missingToolsMessage(detectTools());
  if (missing) { process.stderr.write(`${missing}\n`); process.exit(1); }
  const root = repoRoot();
  const cliPath = options.cli ?? join(root, 'dist', 'src', 'cli.js');
  const loadPath = join(root, 'dist', 'bench', 'clients-load.js');
  if (!existsSync(cliPath)) { process.stderr.write(`bench: ${cliPath} not found; run npm run build\n`); process.exit(1); }
  const workDir = mkdtempSync(join(tmpdir(), 'nanocdn-clients-'));
  chmodSync(workDir, 0o755);
  installExitHandlers(() => { if (!options.keep) rmSync(workDir, { recursive: true, force: true }); });
  const loadAtStart = loadavg();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const rounds = options.rounds ?? (options.quick ? 1 : 3);
  log(`bench:clients: ${options.quick ? 'quick, ' : ''}${rounds} round(s); load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} cpus; node ${cliPath}, workers ${options.workers}`);
  const runs = new Map<string, Row[]>();
  const wanted = (text: string) => !options.only || text.toLowerCase().includes(options.only.toLowerCase());
  // A scenario's id alone ("idle", "stalled", "keepalive") picks just that scenario; other text matches titles, ids and targets.
  const byId = SCENARIOS.some((s) => s.id === options.only);
  for (let round = 1; round <= rounds; round++) {
    for (const scenario of SCENARIOS) {
      for (const kind of ['node', 'nginx'] as const) {
        if (byId ? scenario.id !== options.only : !wanted(scenario.title) && !wanted(scenario.id) && !wanted(kind)) continue;
        const r = await measure(scenario, kind, options, { workDir, cliPath, loadPath });
        const key = `${scenario.id}\u0000${kind}`;
        runs.set(key, [...(runs.get(key) ?? []), r]);
        log(`  ${rounds > 1 ? `round ${round}/${rounds}  ` : ''}${r.scenario.padEnd(16)} ${r.target.padEnd(6)} RSS ${r.baselineMB.toFixed(0)} → peak ${r.peakMB.toFixed(0)} MB (+${r.growthMB.toFixed(0)})  ` +
          `probe p99 ${r.probe.p99Ms.toFixed(1)} ms (${r.probe.count} ok, ${r.probe.errors} failed)  ${JSON.stringify(r.outcomes)}${r.met === null ? '' : r.met ? '  met' : '  NOT MET'}${r.notes.length ? `  (${r.notes.join('; ')})` : ''}`);
      }
    }
  }
  await stopAll();
  const rows = [...runs.values()].map(combine);
  const text = table(rows);
  process.stdout.write(`\n${text}\n`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = join(root, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const jsonPath = join(resultsDir, `clients-${stamp}.json`);
  writeFileSync(jsonPath, `${JSON.stringify({ options, rounds, runs: [...runs.values()], loadAvgAtStart: loadAtStart, loadAvgAtEnd: loadavg(), cpus: cpus().length, node: process.version, rows, table: text }, null, 2)}\n`);
  log(`bench:clients: load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}; results in ${jsonPath}`);
  if (!options.keep) rmSync(workDir, { recursive: true, force: true });
  process.exit(0);
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench:clients: ${err instanceof Error ? err.stack : String(err)}\n`);
  await stopAll();
  process.exit(1);
});
