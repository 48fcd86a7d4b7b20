/**
 * `npm run bench`: the node against nginx on this machine, in the same run.
 *
 * Starts its own nginx (static + WebDAV, 1 worker and `auto`), the built node
 * (durability fsync and none), and the shipped front (config/nginx.conf.example
 * before a node with download.accelRedirect), all on 127.0.0.1 with their
 * own dirs under a temp dir; runs each scenario for every target interleaved
 * (A/B/A/B) over rounds; prints a table and writes bench/results/<time>.json.
 * Every process it started is stopped by pid at the end, on error and on ^C.
 *
 *   npm run bench                      3 rounds of 6 s runs (about 8 minutes)
 *   npm run bench -- --quick           1 round, short runs (about 2 minutes)
 *   npm run bench -- --only "GET 10"   scenarios / targets containing the text
 *   options: --rounds N  --duration S  --profile (node --cpu-prof)  --keep (keep the temp dir)
 *            --no-node (plain nginx only, e.g. before the node is built)
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitWithUsage, positiveInt } from './args.js';
import { Measurer, WRK_THREADS } from './measure.js';
import { installExitHandlers, stopAll } from './processes.js';
import { renderTable, summarize, type ScenarioResult } from './report.js';
import { selectScenarios } from './scenarios.js';
import { prepareFixtures, startTargets } from './setup.js';
import { detectTools, gitCommit, missingToolsMessage } from './tools.js';

/** The whole run must stay under 10 minutes; later runs are skipped past this. */
const BUDGET_MS = 9.5 * 60_000;
const TOKEN = 'bench-token-0123456789abcdef';
/** Removes the temp dir (set once it exists); runs on every way out. */
let onExit = (): void => {};

interface Options {
  rounds: number;
  durationSec: number;
  warmupSec: number;
  only?: string;
  profile: boolean;
  keep: boolean;
  node: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { rounds: 3, durationSec: 6, warmupSec: 1, profile: false, keep: false, node: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--quick': options.rounds = 1; options.durationSec = 3; break;
      case '--rounds': options.rounds = positive(arg, value()); break;
      case '--duration': options.durationSec = positive(arg, value()); break;
      case '--only': options.only = value(); break;
      case '--profile': options.profile = true; break;
      case '--keep': options.keep = true; break;
      case '--no-node': options.node = false; break;
      case '-h': case '--help': usage(); break;
      default: usage(`unknown option ${arg}`);
    }
  }
  return options;
}

function positive(name: string, text: string): number {
  return positiveInt(name, text, usage);
}

function usage(error?: string): never {
  return exitWithUsage('bench', 'usage: npm run bench -- [--quick] [--rounds N] [--duration SECONDS] [--only TEXT] [--profile] [--keep] [--no-node]', error);
}

/** The repo root: the first dir above this file with a package.json (works from bench/ and dist/bench/). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the bench');
    dir = up;
  }
  return dir;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const tools = detectTools();
  const missing = missingToolsMessage(tools);
  if (missing) { process.stderr.write(`${missing}\n`); process.exit(1); }

  const root = repoRoot();
  const cliPath = join(root, 'dist', 'src', 'cli.js');
  if (options.node && !existsSync(cliPath)) {
    process.stderr.write(`bench: ${cliPath} not found; build the node first (npm run build), or pass --no-node to measure plain nginx only.\n`);
    process.exit(1);
  }

  const workDir = mkdtempSync(join(tmpdir(), 'nanocdn-bench-'));
  chmodSync(workDir, 0o755);
  onExit = () => cleanupWorkDir(workDir, options.keep);
  installExitHandlers(onExit);
  const started = Date.now();
  const stamp = new Date(started).toISOString().replace(/[:.]/g, '-');
  const profileDir = join(root, 'bench', 'results', `profile-${stamp}`);

  const scenarios = selectScenarios(options.only, (v) => options.node || v.baseline);
  if (scenarios.length === 0) usage(`--only ${options.only} matches no scenario`);
  const runsPerRound = scenarios.reduce((n, s) => n + s.variants.length, 0);
  const estimateSec = Math.round(runsPerRound * (options.rounds * (options.durationSec + 1) + options.warmupSec + 1) + 15);
  log(`bench: ${scenarios.length} scenarios, ${runsPerRound} runs per round, ${options.rounds} round(s) of ${options.durationSec} s each; about ${Math.ceil(estimateSec / 60)} min`);
  log(`bench: nginx ${tools.nginx}, wrk ${tools.wrk}, ${cpus().length} cpus, temp dir ${workDir}`);
  const loadAtStart = loadavg();
  if (loadAtStart[0] > cpus().length / 4) {
    log(`bench: warning: the machine is busy (load average ${loadAtStart.map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cpus); numbers will be low and noisy. The A/B interleaving keeps the ratios fairer than the absolute numbers.`);
  }

  const targets = await startTargets(scenarios, {
    workDir, cliPath, examplePath: join(root, 'config', 'nginx.conf.example'), token: TOKEN,
    nodeFlags: (id) => (options.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${id}.cpuprofile`] : []),
  });
  log(`bench: started ${[...targets.values()].map((t) => `${t.label} ${t.url} (pid ${t.pid})`).join(', ')}`);
  const putBodies = await prepareFixtures(scenarios, targets, workDir, TOKEN);
  const measurer = new Measurer({ targets, workDir, token: TOKEN, putBodies });

  const results: ScenarioResult[] = scenarios.map((scenario) => ({
    scenario, variants: scenario.variants.map((variant) => ({ variant, rounds: [], problems: [] })),
  }));
  let skipped = 0;
  for (let round = 1; round <= options.rounds; round++) {
    for (const [s, scenario] of scenarios.entries()) {
      for (const [v, variant] of scenario.variants.entries()) {
        if (Date.now() - started + (options.durationSec + 5) * 1000 > BUDGET_MS) { skipped++; continue; }
        if (round === 1 && options.warmupSec > 0) await measurer.run(scenario, variant, options.warmupSec);
        const { result, problems } = await measurer.run(scenario, variant, options.durationSec);
        const slot = results[s].variants[v];
        slot.rounds.push(result);
        slot.problems.push(...problems.map((p) => `round ${round}: ${p}`));
        log(`  round ${round}/${options.rounds}  ${scenario.title.padEnd(16)} ${variant.label.padEnd(24)} ${Math.round(result.rps).toString().padStart(7)} rps  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  cpu server ${Math.round(result.serverCpuPercent)}% ${result.cpuMsPerRequest.toFixed(3)} ms/req wrk ${Math.round(result.clientCpuPercent)}% other ${Math.round(result.otherCpuPercent)}%${problems.length ? `  (!) ${problems.join('; ')}` : ''}`);
      }
    }
  }
  if (skipped > 0) log(`bench: skipped ${skipped} runs to stay within ${BUDGET_MS / 60_000} minutes`);

  await stopAll();
  const table = renderTable(results);
  process.stdout.write(`\n${table}\n`);
  const resultsDir = join(root, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const jsonPath = join(resultsDir, `bench-${stamp}.json`);
  writeFileSync(jsonPath, `${JSON.stringify({
    startedAt: new Date(started).toISOString(),
    elapsedSec: Math.round((Date.now() - started) / 1000),
    options,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memBytes: totalmem(), kernel: release(), node: process.version, nginx: tools.nginx, wrk: tools.wrk, loadAvgAtStart: loadAtStart, loadAvgAtEnd: loadavg() },
    commit: gitCommit(root),
    wrkThreads: WRK_THREADS,
    skippedRuns: skipped,
    scenarios: results.map((r) => ({
      id: r.scenario.id, title: r.scenario.title, method: r.scenario.method, size: r.scenario.size,
      connections: r.scenario.connections, referenceNginxRps: r.scenario.referenceNginxRps,
      summary: summarize(r),
      runs: r.variants.map((v) => ({ label: v.variant.label, target: v.variant.target, name: v.variant.name, rounds: v.rounds, problems: v.problems })),
    })),
    table,
  }, null, 2)}\n`);
  log(`\nbench: results in ${jsonPath}${options.profile ? `, CPU profiles in ${profileDir}` : ''} (${Math.round((Date.now() - started) / 1000)} s)`);
  onExit();
  const problems = results.some((r) => r.variants.some((v) => v.problems.length > 0));
  process.exit(problems ? 1 : 0);
}

function cleanupWorkDir(dir: string, keep: boolean): void {
  onExit = () => {};
  if (keep) { process.stderr.write(`bench: kept ${dir}\n`); return; }
  rmSync(dir, { recursive: true, force: true });
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

main().catch(async (err: unknown) => {
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}${cause}\n`);
  await stopAll();
  onExit();
  process.exit(1);
});
