import path from 'node:path';
import type { Command } from 'commander';
import { formatBytes } from '../config/units.js';
import { cliLogger } from '../logger.js';
import { RetiredNames } from '../retired-names.js';
import { FsStorage } from '../storage/fs-storage.js';
import { openIndex } from '../index/open.js';
import { Pacer } from '../scrub/pacer.js';
import { quarantineDirOf, quarantineFile } from '../scrub/quarantine.js';
import { scrub, type BadFile, type ScrubResult } from '../scrub/scrub.js';
import { EXIT, fail, refuseMemoryEngine } from './exit-codes.js';
import { configOf, withConfigFlags, type ConfigFlags } from './config-options.js';
import { requireDataDir } from './data-dir.js';

interface ScrubOptions extends ConfigFlags {
  json?: boolean;
  rate: string;
  quarantine?: boolean;
}

/** Read rate when --rate is not given: low enough to leave a disk to the node, 1 TB in about 6 h. */
const DEFAULT_RATE_MBPS = 50;

/**
 * `nanocdn scrub [--json] [--rate MB/s] [--quarantine]` (docs/design.md §10):
 * reads every indexed file at a bounded rate and verifies its size and
 * sha256 against the index; exit 1 when it finds a bad file. Safe while the
 * server runs (it only reads, and with --quarantine moves bad files out).
 * The run is recorded in the index, so the serving node exports it.
 */
export function registerScrub(program: Command): void {
  withConfigFlags(program.command('scrub'))
    .description('verify the size and sha256 of every stored file against the index, at a bounded read rate (exit 1 when a file is bad)')
    .option('--json', 'print one JSON document (with every bad file)')
    .option('--rate <MBps>', 'read at most this many MB (10^6 bytes) per second; 0: no limit', String(DEFAULT_RATE_MBPS))
    .option('--quarantine', 'move files whose size or sha256 is wrong to <dataDir>/quarantine/<name> and drop their index rows')
    .action((options: ScrubOptions) => run(options));
}

async function run(options: ScrubOptions): Promise<void> {
  const rateMBps = Number(options.rate);
  if (options.rate.trim() === '' || !Number.isFinite(rateMBps) || rateMBps < 0) fail(`--rate: "${options.rate}" is not a rate in MB/s (e.g. 50, or 0 for no limit)`, EXIT.usage);
  const config = configOf(options);
  refuseMemoryEngine(config, 'scrub');
  const dataDir = path.resolve(config.dataDir);
  requireDataDir(dataDir, { index: config.index.engine === 'sqlite' });
  const index = await openIndex(config, dataDir);
  const quarantineDir = quarantineDirOf(dataDir);
  // A quarantined pub name is retired like any removed one: caches may hold the bytes it was served with.
  const retired = new RetiredNames({ retired: index.retired, retentionMs: config.upload.retirePubNamesFor, now: Date.now, logger: cliLogger() });
  let result: ScrubResult;
  try {
    // The s3 engine (and the AWS SDK) is loaded only when configured.
    const storage = config.storage.engine === 's3'
      ? (await import('../storage/s3-engine.js')).s3StorageOf(config, { claims: index.claims })
      : new FsStorage({ dataDir, fsync: config.durability === 'fsync' });
    try {
      result = await scrub({
        storage, files: index.files, now: Date.now, pacer: new Pacer(rateMBps > 0 ? rateMBps * 1e6 : null),
        quarantine: options.quarantine ? (name) => quarantineFile(storage, index.files, quarantineDir, name, retired.retireAt(name)) : undefined,
      });
    } finally {
      await storage.close();
    }
    await index.scrubs.record({
      atMs: result.atMs, durationMs: result.durationMs, files: result.checked, bytes: result.bytes,
      corrupt: result.corrupt, missing: result.missing, quarantined: result.quarantined,
    });
  } finally {
    await index.close();
  }
  const { atMs, durationMs, ...figures } = result;
  process.stdout.write(options.json
    ? `${JSON.stringify({ dataDir, at: new Date(atMs).toISOString(), durationMs: Math.round(durationMs), rateMBps: rateMBps > 0 ? rateMBps : null, quarantineDir, ...figures })}\n`
    : report(result, dataDir, rateMBps, quarantineDir));
  process.exitCode = result.bad.length > 0 ? EXIT.failure : EXIT.ok;
}

/** The scrub's result for people. */
function report(result: ScrubResult, dataDir: string, rateMBps: number, quarantineDir: string): string {
  const seconds = result.durationMs / 1000;
  const speed = seconds > 0 ? `${(result.bytes / 1e6 / seconds).toFixed(1)} MB/s` : '-';
  const lines = [`scrub of ${dataDir}: checked ${result.checked} files, ${formatBytes(result.bytes)} in ${Math.round(result.durationMs)} ms ` +
    `(${speed}, limit ${rateMBps > 0 ? `${rateMBps} MB/s` : 'none'}): ` +
    (result.bad.length === 0 ? 'all match the index' : `${result.bad.length} bad (${result.corrupt} corrupt, ${result.missing} missing)`)];
  for (const bad of result.bad) {
    const label = `${bad.problem}:`;
    lines.push(`  ${label.length >= 10 ? `${label} ` : label.padEnd(10)}${bad.name} (${detail(bad)})${bad.quarantinedTo ? ` -> ${bad.quarantinedTo}` : ''}`);
  }
  if (result.missing > 0) lines.push('rows without a file: `nanocdn reindex` drops them (safe while the server runs)');
  if (result.corrupt > result.quarantined) lines.push(`restore corrupt files from a backup, or rerun with --quarantine to move them to ${quarantineDir}/`);
  if (result.quarantined > 0) lines.push(`${result.quarantined} corrupt files moved to ${quarantineDir}/ (no longer served, their rows dropped)`);
  return `${lines.join('\n')}\n`;
}

function detail(bad: BadFile): string {
  switch (bad.problem) {
    case 'size': return `${formatBytes(bad.actualSize ?? 0)}, the index says ${formatBytes(bad.expectedSize)}`;
    case 'sha256': return "bytes differ from the index's sha256";
    case 'missing': return 'the index has a row, the store no file';
    case 'unreadable': return bad.error ?? 'read failed';
  }
}
