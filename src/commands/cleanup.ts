import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { Command } from 'commander';
import type { SingleBar } from 'cli-progress';
import { cliLogger } from '../logger.js';
import { formatBytes, parseDuration, parseSize } from '../config/units.js';
import type { Config } from '../config/schema.js';
import { openNode } from '../node.js';
import type { RunRequest, RunSummary } from '../eviction/run.js';
import { LockHeldError } from '../eviction/lock.js';
import { EXIT, fail, refuseMemoryEngine } from './exit-codes.js';
import { configOf, withConfigFlags, type ConfigFlags } from './config-options.js';
import { requireDataDir } from './data-dir.js';

interface CleanupOptions extends ConfigFlags {
  dryRun?: boolean;
  tenant?: string;
  class?: string;
  maxAge?: string;
  maxIdle?: string;
  maxBytes?: string;
  json?: boolean;
  list?: boolean;
  yes?: boolean;
  wait?: string;
}

/** How often a cleanup with --wait tries the eviction lock again. */
const WAIT_POLL_MS = 1000;
/** Runs this long (in files to delete) get a progress bar on a terminal. */
const PROGRESS_FROM_FILES = 1000;
/** Names a dry run prints without --list. */
const DRY_RUN_SAMPLE = 20;

/**
 * `nanocdn cleanup` (and `npm run cleanup --`, scripts/cleanup.ts): one run
 * of the eviction engine over the same index and lock as the server, so it
 * works while the server runs and when it does not.
 */
export function cleanupCommand(): Command {
  return withConfigFlags(new Command('cleanup'))
    .description('remove files of evictable classes by expiry, age, idle time and size limits (config classes, or the options)')
    .option('--dry-run', 'show what would be removed; change nothing')
    .option('--tenant <tenant>', 'only files of this tenant')
    .option('--class <class>', 'only files of this (evictable) class')
    .option('--max-age <duration>', 'remove files uploaded longer ago than this (e.g. 7d), instead of the class maxAge')
    .option('--max-idle <duration>', 'remove files not read for this long (e.g. 3d), instead of the class maxIdle')
    .option('--max-bytes <size>', 'keep at most this many bytes of the selected files, least recently used go first (e.g. 50GiB)')
    .option('--json', 'print one JSON document (with every file)')
    .option('--list', 'print every file removed (or that would be)')
    .option('-y, --yes', 'do not ask; required for a real run when stdin is not a terminal')
    .option('--wait <duration>', 'when another eviction run holds the lock (on this node or, with the postgres index, on any node), wait up to this long (e.g. 10m) for it to end, then run; without it, exit 3 at once')
    .showHelpAfterError()
    .exitOverride((err) => process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage))
    .action((options: CleanupOptions) => cleanup(options));
}

export function registerCleanup(program: Command): void {
  program.addCommand(cleanupCommand());
}

async function cleanup(options: CleanupOptions): Promise<void> {
  const config = configOf(options);
  refuseMemoryEngine(config, 'cleanup');
  const request = requestOf(options, config);
  const waitMs = parse('--wait', options.wait, parseDuration) ?? 0;
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  if (!request.dryRun && !options.yes && !interactive) {
    fail('a real run needs --yes when not on a terminal (try --dry-run first)', EXIT.usage);
  }
  const dataDir = path.resolve(config.dataDir);
  requireDataDir(dataDir, { index: config.index.engine === 'sqlite' });
  // Logs go to stderr as sentences: stdout is the report (and must stay parseable with --json).
  const logger = cliLogger();
  // A server may be writing to tmp/ right now: leave it alone.
  const runtime = await openNode(config, { logger, sweepTmpAtOpen: false });
  let summary: RunSummary;
  try {
    if (!request.dryRun && !options.yes) {
      const plan = await runOrExit(() => runtime.ctx.evictor.run({ ...request, dryRun: true }));
      process.stdout.write(report(plan, dataDir, options));
      if (plan.files === 0 || !(await confirm(`Remove these ${plan.files} files (${formatBytes(plan.bytes)})? [y/N] `))) {
        process.stdout.write('nothing removed\n');
        return;
      }
    }
    const progress = interactive && !options.json ? await progressBar() : undefined;
    summary = await runOrExit(() => runtime.ctx.evictor.run({ ...request, onProgress: progress?.update }), { waitMs, wait: options.wait });
    progress?.stop();
  } finally {
    await runtime.close();
  }
  process.stdout.write(options.json ? `${JSON.stringify({ dataDir, ...summary, durationMs: Math.round(summary.durationMs) })}\n` : report(summary, dataDir, options));
  if (summary.error) {
    process.stderr.write(`nanocdn: cleanup failed: ${summary.error}\n`);
    process.exitCode = EXIT.failure;
  }
}

/** An option's value through its parser; a bad one exits 2 naming the option. */
function parse<T>(flag: string, value: string | undefined, parser: (v: string) => T): T | undefined {
  if (value === undefined) return undefined;
  try { return parser(value); } catch (err) { return fail(`${flag}: ${(err as Error).message}`, EXIT.usage); }
}

/** The run of these options; bad values exit 2 naming the option. */
function requestOf(options: CleanupOptions, config: Config): RunRequest {
  const evictable = Object.entries(config.classes).filter(([, c]) => c.evictable).map(([name]) => name);
  if (options.class !== undefined && !evictable.includes(options.class)) {
    fail(`--class: "${options.class}" is not an evictable class (evictable: ${evictable.join(', ') || 'none'})`, EXIT.usage);
  }
  if (options.tenant !== undefined && !/^[A-Za-z0-9._-]+$/.test(options.tenant)) fail(`--tenant: "${options.tenant}" is not a tenant name`, EXIT.usage);
  return {
    reason: 'cli',
    dryRun: options.dryRun ?? false,
    scope: { tenant: options.tenant, class: options.class },
    overrides: { maxAgeMs: parse('--max-age', options.maxAge, parseDuration), maxIdleMs: parse('--max-idle', options.maxIdle, parseDuration) },
    maxBytes: parse('--max-bytes', options.maxBytes, parseSize),
  };
}

/**
 * Runs; while another run holds the eviction lock, exits 3 naming it, or
 * with --wait says so once and tries again every WAIT_POLL_MS until the
 * wait is over (then exits 3).
 */
async function runOrExit(start: () => Promise<RunSummary>, options: { waitMs: number; wait?: string } = { waitMs: 0 }): Promise<RunSummary> {
  const deadline = Date.now() + options.waitMs;
  let waiting = false;
  for (;;) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof LockHeldError)) throw err;
      const left = deadline - Date.now();
      if (left <= 0) fail(waiting ? `${err.message} (waited ${options.wait})` : err.message, EXIT.lockHeld);
      if (!waiting) process.stderr.write(`nanocdn: ${err.message.replace(/; wait for it to finish$/, '')}; waiting up to ${options.wait} for it to end\n`);
      waiting = true;
      await delay(Math.min(WAIT_POLL_MS, left));
    }
  }
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/** The progress bar of a long interactive run (cli-progress loads only then: `serve` does not carry it). */
async function progressBar(): Promise<{ update: RunRequest['onProgress']; stop(): void }> {
  const { default: cliProgress } = await import('cli-progress');
  let bar: SingleBar | undefined;
  return {
    update(progress) {
      if (progress.phase !== 'delete' || progress.total === null || progress.total < PROGRESS_FROM_FILES) return;
      if (!bar) {
        bar = new cliProgress.SingleBar({ stream: process.stderr, format: 'removing [{bar}] {percentage}% {value}/{total} files, eta {eta}s' },
          cliProgress.Presets.shades_classic);
        bar.start(progress.total, 0);
      }
      bar.update(progress.done);
    },
    stop() { bar?.stop(); },
  };
}

/** The per tenant/class table of a run, for people. */
function report(summary: RunSummary, dataDir: string, options: { list?: boolean } = {}): string {
  const verb = summary.dryRun ? 'would remove' : 'removed';
  const lines = [`cleanup${summary.dryRun ? ' (dry run)' : ''} of ${dataDir}: ${verb} ${summary.files} files, ${formatBytes(summary.bytes)}` +
    ` in ${Math.round(summary.durationMs)} ms${summary.failed ? `; ${summary.failed} failed` : ''}`];
  if (summary.groups.length > 0) {
    const rows = [['TENANT', 'CLASS', 'FILES', 'BYTES', 'REASONS'],
      ...summary.groups.map((g) => [g.tenant, g.class, String(g.files), formatBytes(g.bytes),
        Object.entries(g.reasons).map(([reason, n]) => `${reason} ${n}`).join(', ')]),
      ['total', '', String(summary.files), formatBytes(summary.bytes), '']];
    const widths = rows[0].map((_, col) => Math.max(...rows.map((r) => r[col].length)));
    for (const row of rows) {
      lines.push(row.map((cell, col) => (col === 2 || col === 3 ? cell.padStart(widths[col]) : cell.padEnd(widths[col]))).join('  ').trimEnd());
    }
  }
  const shown = options.list ? summary.victims : summary.dryRun ? summary.victims.slice(0, DRY_RUN_SAMPLE) : [];
  for (const v of shown) lines.push(`  ${v.reason.padEnd(12)} ${formatBytes(v.size).padStart(10)}  ${v.name}`);
  if (shown.length < summary.victims.length && shown.length > 0) lines.push(`  … and ${summary.victims.length - shown.length} more (--list or --json for all)`);
  return `${lines.join('\n')}\n`;
}
