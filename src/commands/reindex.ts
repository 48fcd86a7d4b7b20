import type { Command } from 'commander';
import path from 'node:path';
import { FsStorage } from '../storage/fs-storage.js';
import { openIndex } from '../index/open.js';
import { reconcile, type Drift } from '../index/reconcile.js';
import { Classifier } from '../classes.js';
import { EXIT, refuseMemoryEngine } from './exit-codes.js';
import { configOf, withConfigFlags, type ConfigFlags } from './config-options.js';
import { requireDataDir } from './data-dir.js';

/**
 * `nanocdn reindex [--check [--sizes-only]] [--json]`: brings the index in
 * line with files/ (the truth). Safe while the server runs: it opens only
 * files/ and the index (never sweeps tmp/, which a running server owns).
 * `--check` changes nothing, not even by creating a missing index, reads
 * every file to compare its sha256 with its row (unless --sizes-only), and
 * exits 1 on drift: files without a row, rows without a file, changed files.
 */
export function registerReindex(program: Command): void {
  withConfigFlags(program.command('reindex'))
    .description('rebuild the index from the stored files (the files are the truth)')
    .option('--check', 'report drift without changing anything (exit 1 when there is drift); reads every file to compare its sha256')
    .option('--sizes-only', 'with --check: compare sizes only, do not read the files')
    .option('--json', 'print one JSON document')
    .action(async (options: ConfigFlags & { check?: boolean; sizesOnly?: boolean; json?: boolean }) => {
      const config = configOf(options);
      refuseMemoryEngine(config, 'reindex');
      const dataDir = path.resolve(config.dataDir);
      // A rebuild needs the directory (files/ is the truth); a check also needs the index it checks.
      requireDataDir(dataDir, { index: options.check === true && config.index.engine === 'sqlite' });
      const classifier = new Classifier(config.classes);
      const check = options.check === true;
      const fsStorage = config.storage.engine === 's3' ? null : new FsStorage({ dataDir, fsync: config.durability === 'fsync' });
      if (!check) await fsStorage?.init();
      const index = await openIndex(config, dataDir);
      let drift: Drift;
      try {
        // The s3 engine (and the AWS SDK) is loaded only when configured.
        const storage = fsStorage ?? (await import('../storage/s3-engine.js')).s3StorageOf(config, { claims: index.claims });
        try {
          if (!check && !fsStorage) await storage.init();
          drift = await reconcile(storage, index.files, classifier, { now: Date.now, checkOnly: check, verifyContent: check && !options.sizesOnly });
        } finally {
          await storage.close();
        }
      } finally {
        await index.close();
      }
      const found = drift.addedCount + drift.changedCount + drift.removedCount;
      const summary = {
        dataDir, checked: drift.checked, missingRows: drift.addedCount, orphanRows: drift.removedCount, changedRows: drift.changedCount,
        drift: found > 0, changed: !check && found > 0,
        sample: { missingRows: drift.added.slice(0, 20), orphanRows: drift.removed.slice(0, 20), changedRows: drift.changed.slice(0, 20) },
        skipped: drift.skippedCount, skippedSample: drift.skipped.slice(0, 20),
      };
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary)}\n`);
      } else {
        process.stdout.write(`${check ? 'checked' : 'reindexed'} ${drift.checked} files in ${dataDir}: ` +
          `${drift.addedCount} without a row, ${drift.removedCount} rows without a file, ${drift.changedCount} changed` +
          `${check ? ' (nothing changed)' : summary.changed ? ' (fixed)' : ''}\n`);
        for (const name of summary.sample.missingRows) process.stdout.write(`  no row:  ${name}\n`);
        for (const name of summary.sample.orphanRows) process.stdout.write(`  no file: ${name}\n`);
        for (const c of summary.sample.changedRows) {
          process.stdout.write(`  changed: ${c.name} (${c.why === 'size' ? `size ${c.size}, the row says ${c.rowSize}` : "same size, bytes differ from the row's sha256"})\n`);
        }
        for (const entry of summary.skippedSample) process.stdout.write(`  skipped: ${entry.name} (${entry.why})\n`);
        if (check && summary.drift) process.stdout.write('run `nanocdn reindex` to fix (safe while the server runs)\n');
        if (check && drift.changed.some((c) => c.why === 'sha256')) {
          process.stdout.write('bytes changed at the same size are not re-hashed by `nanocdn reindex`: `nanocdn scrub --quarantine` moves them out of files/\n');
        }
      }
      process.exitCode = check && summary.drift ? EXIT.failure : EXIT.ok;
    });
}
