/**
 * The platform floor: what the plainest Node.js server (bench/floor-server.ts:
 * node:http in node:cluster, one worker per core, the crash-safe minimum of a
 * PUT and a GET) reaches on this machine for the workloads of `npm run bench`,
 * against nginx `worker_processes auto` in the same run. A goal of issue 11
 * for the clustered node (README, Performance) that the floor misses is out
 * of reach here for a node built the same way; how far above the node the
 * floor is, is roughly what the node's own code costs (bench/README.md).
 *
 *   npx tsc -p . && node dist/bench/floor.js [--rounds N] [--duration S]
 *
 * 3 rounds of 6 s runs by default, each run after a 1 s warm-up; within a
 * round every scenario runs its targets in turn (A/B/A/B), starting with
 * another target each round. Table on stdout, then one JSON line. Every
 * process it starts is stopped by pid at the end, on error and on ^C; the
 * temp dir is removed.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { exitWithUsage, positiveInt } from './args.js';
import { Measurer, WRK_THREADS } from './measure.js';
import { installExitHandlers, stopAll } from './processes.js';
import { alignColumns, cpuMs, fmt, ratio, summarize, type ScenarioResult } from './report.js';
import { fixtureName, NGINX_BASELINES, SCENARIOS, type Scenario, type TargetId, type Variant } from './scenarios.js';
import { prepareFixtures } from './setup.js';
import { startFloor, startNginx, type Target } from './targets.js';
import { detectTools, gitCommit, missingToolsMessage } from './tools.js';

/** No target here checks a token (nginx and the floor have no auth). */
const TOKEN = '';
const WARMUP_SEC = 1;

/**
 * Issue 11's goals for the clustered node against nginx `auto` (README,
 * Performance): rps at least `rps` × nginx's; server CPU per upload at most
 * `cpu` × nginx's.
 */
const GOALS: Record<string, { rps: number; cpu?: number }> = {
  'put-1.6MB-c8': { rps: 1.0, cpu: 1.5 },
  'put-1.6MB-c32': { rps: 1.0, cpu: 1.5 },
  'get-1.6MB-c32': { rps: 0.8 },
  'get-10KB-c32': { rps: 0.4 },
};

/** Removes the temp dir (set once it exists); runs on every way out. */
let onExit = (): void => {};

interface Options {
  rounds: number;
  durationSec: number;
}

function optionsOf(argv: string[]): Options {
  let values: { rounds: string; duration: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv, strict: true,
      options: { rounds: { type: 'string', default: '3' }, duration: { type: 'string', default: '6' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  if (values.help) usage();
  return { rounds: positiveInt('--rounds', values.rounds, usage), durationSec: positiveInt('--duration', values.duration, usage) };
}

function usage(error?: string): never {
  return exitWithUsage('floor', 'usage: node dist/bench/floor.js [--rounds N] [--duration SECONDS]', error);
}

/**
 * The workloads of `npm run bench` (scenarios.ts), each for nginx `auto`
 * and the floor; the PUTs also for the floor without the sha256 (nginx's
 * DAV computes none; the node must), the GETs also with blocking reads
 * (nginx's reads block its worker; the node's never block its event loop),
 * and the small GET from memory (the node keeps small bodies in its cache).
 */
function floorScenarios(): Scenario[] {
  const nginxAuto = NGINX_BASELINES.filter((v) => v.target === 'nginx-auto');
  return SCENARIOS.map((scenario) => {
    const name = scenario.method === 'GET' ? fixtureName('pub', scenario.size) : undefined;
    const variants: Variant[] = [
      ...nginxAuto.map((v) => ({ ...v, name })),
      { label: 'floor', target: 'floor', baseline: false, name, auth: false },
    ];
    if (scenario.method === 'PUT') variants.push({ label: 'floor, no sha256', target: 'floor-nohash', baseline: false, auth: false });
    else variants.push({ label: 'floor, blocking reads', target: 'floor-blocking', baseline: false, name, auth: false });
    // The node keeps small bodies in its read cache: its floor for them reads no file at all.
    if (scenario.method === 'GET' && scenario.size <= 64 * 1024) variants.push({ label: 'floor, from memory', target: 'floor-cached', baseline: false, name, auth: false });
    return { ...scenario, variants };
  });
}

async function main(): Promise<void> {
  const options = optionsOf(process.argv.slice(2));
  const tools = detectTools();
  const missing = missingToolsMessage(tools);
  if (missing) { process.stderr.write(`${missing}\n`); process.exit(1); }

  const workDir = mkdtempSync(join(tmpdir(), 'nanocdn-floor-'));
  // nginx's workers read the GET fixtures under it.
  chmodSync(workDir, 0o755);
  onExit = () => {
    onExit = () => {};
    rmSync(workDir, { recursive: true, force: true });
  };
  installExitHandlers(() => onExit());
  const started = Date.now();
  const loadAtStart = loadavg();

  const scenarios = floorScenarios();
  const runsPerRound = scenarios.reduce((n, s) => n + s.variants.length, 0);
  log(`floor: ${scenarios.length} scenarios, ${runsPerRound} runs per round, ${options.rounds} round(s) of ${options.durationSec} s (+${WARMUP_SEC} s warm-up each); about ${Math.ceil((runsPerRound * options.rounds * (options.durationSec + WARMUP_SEC + 2)) / 60)} min`);
  log(`floor: nginx ${tools.nginx}, wrk ${tools.wrk}, ${cpus().length} cpus (${availableParallelism()} floor workers), load average ${loadAtStart.map((l) => l.toFixed(1)).join(' ')}, temp dir ${workDir}`);

  const nginxRoot = join(workDir, 'nginx-root');
  mkdirSync(nginxRoot);
  const targets = new Map<TargetId, Target>();
  targets.set('nginx-auto', await startNginx({ id: 'nginx-auto', label: 'nginx auto workers', workerProcesses: 'auto', root: nginxRoot, workDir }));
  targets.set('floor', await startFloor({ id: 'floor', label: 'floor', dataDir: join(workDir, 'floor'), workDir, hash: true }));
  targets.set('floor-nohash', await startFloor({ id: 'floor-nohash', label: 'floor, no sha256', dataDir: join(workDir, 'floor-nohash'), workDir, hash: false }));
  targets.set('floor-blocking', await startFloor({ id: 'floor-blocking', label: 'floor, blocking reads', dataDir: join(workDir, 'floor-blocking'), workDir, hash: true, reads: 'blocking' }));
  targets.set('floor-cached', await startFloor({ id: 'floor-cached', label: 'floor, from memory', dataDir: join(workDir, 'floor-cached'), workDir, hash: true, reads: 'cached' }));
  log(`floor: started ${[...targets.values()].map((t) => `${t.label} ${t.url} (pid ${t.pid})`).join(', ')}`);
  const putBodies = await prepareFixtures(scenarios, targets, workDir, TOKEN);
  const measurer = new Measurer({ targets, workDir, token: TOKEN, putBodies });

  const results: ScenarioResult[] = scenarios.map((scenario) => ({
    scenario, variants: scenario.variants.map((variant) => ({ variant, rounds: [], problems: [] })),
  }));
  for (let round = 1; round <= options.rounds; round++) {
    for (const [s, scenario] of scenarios.entries()) {
      const count = scenario.variants.length;
      // Another target first each round: whichever runs first after the previous scenario's clean-up is not always the same.
      for (let k = 0; k < count; k++) {
        const v = (k + round - 1) % count;
        const variant = scenario.variants[v];
        await measurer.run(scenario, variant, WARMUP_SEC);
        const { result, problems } = await measurer.run(scenario, variant, options.durationSec);
        const slot = results[s].variants[v];
        slot.rounds.push(result);
        slot.problems.push(...problems.map((p) => `round ${round}: ${p}`));
        log(`  round ${round}/${options.rounds}  ${scenario.title.padEnd(16)} ${variant.label.padEnd(18)} ${Math.round(result.rps).toString().padStart(7)} rps  p99 ${result.p99Ms.toFixed(2)} ms  cpu server ${Math.round(result.serverCpuPercent)}% ${result.cpuMsPerRequest.toFixed(3)} ms/req  wrk ${Math.round(result.clientCpuPercent)}%  other ${Math.round(result.otherCpuPercent)}%${problems.length ? `  (!) ${problems.join('; ')}` : ''}`);
      }
    }
  }
  await stopAll();

  process.stdout.write(`\n${renderFloorTable(results)}\n`);
  process.stdout.write(`${JSON.stringify({
    bench: 'floor',
    startedAt: new Date(started).toISOString(),
    elapsedSec: Math.round((Date.now() - started) / 1000),
    options: { ...options, warmupSec: WARMUP_SEC, wrkThreads: WRK_THREADS },
    machine: {
      cpus: cpus().length, floorWorkers: availableParallelism(), cpuModel: cpus()[0]?.model, kernel: release(), node: process.version,
      nginx: tools.nginx, wrk: tools.wrk, loadAvgAtStart: loadAtStart, loadAvgAtEnd: loadavg(),
    },
    commit: gitCommit(dirname(fileURLToPath(import.meta.url))),
    scenarios: results.map((r) => ({
      id: r.scenario.id, title: r.scenario.title, goal: GOALS[r.scenario.id],
      rows: rows(r).map(({ summary, rpsMin, rpsMax, roundRatios }) => ({
        label: summary.label, rps: summary.rps, rpsMin, rpsMax, p99Ms: summary.p99Ms, errors: summary.errors,
        cpuMsPerRequest: summary.cpuMsPerRequest, ratio: summary.ratio, roundRatios, cpuRatio: summary.cpuRatio, voided: summary.voided,
        goal: summary.baseline ? undefined : verdict(r.scenario.id, summary.ratio, summary.cpuRatio, summary.voided),
        problems: summary.problems,
      })),
      runs: r.variants.map((v) => ({ label: v.variant.label, rounds: v.rounds })),
    })),
  })}\n`);
  log(`floor: done in ${Math.round((Date.now() - started) / 1000)} s`);
  onExit();
  const problems = results.some((r) => r.variants.some((v) => v.problems.length > 0));
  process.exit(problems ? 1 : 0);
}

/** summarize()'s rows plus the spread the table shows: rps min and max, and the ratio to nginx round by round. */
function rows(result: ScenarioResult) {
  const base = result.variants.find((v) => v.variant.baseline)!;
  return summarize(result).map((summary, i) => {
    const rounds = result.variants[i].rounds;
    const rps = rounds.map((r) => r.rps);
    return {
      summary,
      rpsMin: Math.min(...rps),
      rpsMax: Math.max(...rps),
      // The same round's nginx: run back to back, so the machine's drift mostly cancels out.
      roundRatios: summary.baseline ? [] : rounds.map((r, k) => r.rps / base.rounds[k].rps),
    };
  });
}

/** "met" / "missed" for each of the scenario's goals, judged on the medians. */
function verdict(scenarioId: string, rpsRatio: number, cpuRatio: number, voided: string | undefined): string {
  const goal = GOALS[scenarioId];
  if (!goal) return '';
  if (voided) return 'void';
  const parts = [`rps ≥${goal.rps.toFixed(1)}x ${rpsRatio >= goal.rps ? 'met' : 'missed'}`];
  if (goal.cpu !== undefined) parts.push(`cpu ≤${goal.cpu.toFixed(1)}x ${cpuRatio <= goal.cpu ? 'met' : 'missed'}`);
  return parts.join(', ');
}

function renderFloorTable(results: ScenarioResult[]): string {
  const lines: string[][] = [['scenario', 'target', 'rps median (min-max)', '÷ nginx auto (rounds)', 'p99 ms', 'errors', 'ms cpu/req', 'cpu/req ÷ nginx', 'cpu wrk', 'other', 'issue-11 goal']];
  const notes = new Set<string>();
  for (const result of results) {
    for (const [i, { summary: row, rpsMin, rpsMax, roundRatios }] of rows(result).entries()) {
      if (row.voided) notes.add(`${result.scenario.title}: ${row.voided}; ratios against it void`);
      lines.push([
        i === 0 ? result.scenario.title : '',
        row.label + (row.problems.length ? ' (!)' : ''),
        `${fmt(row.rps)} (${fmt(rpsMin)}-${fmt(rpsMax)})`,
        row.baseline ? '' : row.voided ? 'void' : `${ratio(row.ratio)} (${ratio(Math.min(...roundRatios))}-${ratio(Math.max(...roundRatios))})`,
        row.p99Ms.toFixed(2),
        String(row.errors),
        cpuMs(row.cpuMsPerRequest),
        row.baseline ? '' : ratio(row.cpuRatio),
        `${Math.round(row.clientCpuPercent)}%`,
        `${Math.round(row.otherCpuPercent)}%`,
        row.baseline ? '' : verdict(result.scenario.id, row.ratio, row.cpuRatio, row.voided),
      ]);
    }
  }
  const problems = results.flatMap((r) => r.variants.flatMap((v) => v.problems.map((p) => `(!) ${r.scenario.title} / ${v.variant.label}: ${p}`)));
  return [
    ...alignColumns(lines, 2),
    '',
    'rps: median over rounds (min-max). ÷ nginx auto: median rps ÷ nginx\'s median rps (in brackets: the lowest and highest ratio within one round).',
    'p99: median over rounds; errors: socket errors and non-2xx/3xx, all rounds. ms cpu/req: server CPU (user+system of the process tree, /proc)',
    '  per request, for PUT per upload stored; median over rounds. cpu wrk / other: wrk\'s CPU and the rest of the machine\'s, % of one core.',
    'floor: node:http in node:cluster, one worker per core; PUT = tmp file + sha256 + fsync + rename + fsync of the directory; GET = open + fstat +',
    '  one read (<= 64 KiB) or 1 MiB reads into pooled buffers, through the thread pool ("blocking reads": sync calls in the event loop, as nginx',
    '  does without `aio threads`; fine while the files are in the page cache; "from memory": a small body kept once read, as the node\'s read',
    '  cache keeps it). nginx: static + WebDAV PUT, which writes and renames but neither hashes nor fsyncs.',
    'issue-11 goal: the clustered node\'s goals, judged on the floor: "missed" means even this floor misses it here (this machine, this client), so a',
    '  node built the same way (node:http, file calls through the thread pool), which does all this and more, should not be expected to meet it.',
    ...notes,
    ...problems,
  ].join('\n');
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

main().catch(async (err: unknown) => {
  process.stderr.write(`floor: ${err instanceof Error ? err.stack : String(err)}\n`);
  await stopAll();
  onExit();
  process.exit(1);
});
