/**
 * Server CPU per upload, A/B: `node dist/bench/upload-cpu.js [--cli LABEL=PATH]... [--nginx]`
 *
 * Starts one node per `--cli` (durability fsync, the bench's node config,
 * the shipped log level) and, with `--nginx`, plain nginx with 1 worker;
 * then, round after round and target after target (A/B/A/B), PUTs a 1.6 MB
 * body under new names with wrk (8 connections) and divides the CPU the
 * server used (/proc, user + system, its process tree) by the uploads.
 * Prints the min and the median over rounds (on a shared machine the min is
 * the figure least disturbed by others) and the median of each round's ratio
 * to the first node (run back to back, so drift cancels out). Each round's
 * line also gives the user and system time apart: the server's own code
 * against the kernel's work for it (copies, fsync, the socket).
 *
 *   options: --workers N|auto (NANOCDN_WORKERS, 1)  --profile DIR (node --cpu-prof into DIR)  --rounds N (5)  --duration S (4)  --connections C (8)  --size BYTES (1600000)
 *            --warm-runs N (0: each counted run is preceded by N uncounted runs of the same target)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { countStored, removeStored } from './fixtures.js';
import { cpuTimes, installExitHandlers, stopAll } from './processes.js';
import { nodeConfig } from './setup.js';
import { startNginx, startNode, type Target } from './targets.js';
import { runWrk, writePutScript } from './wrk.js';

const TOKEN = 'bench-token-0123456789abcdef';

interface Options { clis: [string, string][]; nginx: boolean; profileDir?: string; workers: string; rounds: number; durationSec: number; connections: number; size: number; warmRuns: number }

function parseArgs(argv: string[]): Options {
  const o: Options = { clis: [], nginx: false, workers: '1', rounds: 5, durationSec: 4, connections: 8, size: 1_600_000, warmRuns: 0 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => argv[++i] ?? fail(`${arg} needs a value`);
    switch (arg) {
      case '--cli': {
        const v = value();
        const eq = v.indexOf('=');
        o.clis.push(eq === -1 ? [`node${o.clis.length + 1}`, v] : [v.slice(0, eq), v.slice(eq + 1)]);
        break;
      }
      case '--nginx': o.nginx = true; break;
      case '--workers': o.workers = value(); break;
      case '--profile': o.profileDir = value(); break;
      case '--rounds': o.rounds = Number(value()); break;
      case '--duration': o.durationSec = Number(value()); break;
      case '--connections': o.connections = Number(value()); break;
      case '--size': o.size = Number(value()); break;
      case '--warm-runs': o.warmRuns = Number(value()); break;
      default: fail(`unknown option ${arg}`);
    }
  }
  if (o.clis.length === 0) o.clis.push(['node', join(process.cwd(), 'dist', 'src', 'cli.js')]);
  return o;
}

function fail(message: string): never {
  process.stderr.write(`upload-cpu: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const workDir = mkdtempSync(join(tmpdir(), 'nanocdn-upload-cpu-'));
  installExitHandlers(() => rmSync(workDir, { recursive: true, force: true }));
  const bodyFile = join(workDir, 'body.bin');
  writeFileSync(bodyFile, randomBytes(o.size));
  const targets: Target[] = [];
  mkdirSync(join(workDir, 'nginx-root'));
  if (o.nginx) targets.push(await startNginx({ id: 'nginx-1', label: 'nginx 1 worker', workerProcesses: '1', root: join(workDir, 'nginx-root'), workDir }));
  for (const [label, cliPath] of o.clis) {
    const id = label.replace(/[^A-Za-z0-9-]/g, '_');
    targets.push(await startNode({ id, label, cliPath, dataDir: join(workDir, id), config: nodeConfig('fsync'), token: TOKEN, workDir, env: { NANOCDN_WORKERS: o.workers },
      nodeFlags: o.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, `--cpu-prof-name=${id}.cpuprofile`] : [] }));
  }
  const perUpload = new Map<string, number[]>(targets.map((t) => [t.label, []]));
  let run = 0;
  for (let round = 1; round <= o.rounds; round++) {
    // Each round starts with another target: no target always runs first (after the previous round's clean-up).
    for (const target of targets.map((_, i) => targets[(i + round) % targets.length])) {
      for (let warm = 0; warm <= o.warmRuns; warm++) {
        const counted = warm === o.warmRuns;
        const prefix = `pub/cpu/r${++run}`;
        const script = writePutScript(workDir, `r${run}`, {
          pathPrefix: target.putPath(`${prefix}/`), bodyFile, headers: target.kind === 'nginx' ? {} : { Authorization: `Bearer ${TOKEN}` },
        });
        const before = cpuTimes(target.pid);
        const result = await runWrk({ url: target.url, connections: o.connections, threads: 2, durationSec: o.durationSec, script, timeoutSec: 30 });
        await new Promise((resolve) => setTimeout(resolve, 300));
        const after = cpuTimes(target.pid);
        const stored = countStored(join(target.filesDir, prefix), o.size);
        const perFile = (seconds: number) => (1000 * seconds) / Math.max(1, stored.files);
        const ms = perFile(after.user + after.system - before.user - before.system);
        if (counted) perUpload.get(target.label)!.push(ms);
        process.stderr.write(`round ${round}${counted ? '' : ' (warm-up)'} ${target.label.padEnd(16)} ${stored.files} uploads (${result.errors.status} non-2xx), ${result.rps.toFixed(1)} rps, ${ms.toFixed(2)} ms CPU per upload (user ${perFile(after.user - before.user).toFixed(2)}, system ${perFile(after.system - before.system).toFixed(2)})\n`);
        await removeStored(target, prefix, TOKEN);
      }
    }
  }
  await stopAll();
  rmSync(workDir, { recursive: true, force: true });
  const first = [...perUpload.values()][o.nginx ? 1 : 0];
  for (const [label, values] of perUpload) {
    const sorted = [...values].sort((a, b) => a - b);
    // Each round ran the targets back to back: the ratio within a round is the least disturbed by the machine's drift.
    const ratios = values.map((v, i) => v / first[i]).sort((a, b) => a - b);
    process.stdout.write(`${label.padEnd(16)} CPU ms per ${o.size}-byte upload: min ${sorted[0].toFixed(2)}, median ${median(sorted).toFixed(2)} (${values.map((v) => v.toFixed(2)).join(' ')}); ÷ ${[...perUpload.keys()][o.nginx ? 1 : 0]} per round: median ${median(ratios).toFixed(2)}\n`);
  }
}

function median(sorted: number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

main().catch(async (err: unknown) => {
  process.stderr.write(`upload-cpu: ${err instanceof Error ? err.stack : String(err)}\n`);
  await stopAll();
  process.exit(1);
});
