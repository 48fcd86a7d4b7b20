import type { Command } from 'commander';
import path from 'node:path';
import { loadConfig } from '../config/load.js';
import { openNode } from '../node.js';
import { reconcile } from '../index/reconcile.js';
import { createLogger } from '../logger.js';
import { EXIT } from './exit-codes.js';

export function registerReindex(program: Command): void {
  program.command('reindex')
    .description('rebuild the index from the stored files (the files are the truth)')
    .option('--check', 'report drift without changing anything (exit 1 when there is drift)')
    .option('--json', 'print one JSON document')
    .action(async (options: { check?: boolean; json?: boolean }) => {
      const config = loadConfig();
      const runtime = await openNode(config, { logger: createLogger('warn') });
      try {
        const { ctx } = runtime;
        const drift = await reconcile(ctx.storage, ctx.index, ctx.classifier, { now: Date.now, checkOnly: options.check });
        const summary = {
          dataDir: path.resolve(config.dataDir), checked: drift.checked, missingRows: drift.addedCount,
          orphanRows: drift.removedCount, changed: !options.check,
          sample: { missingRows: drift.added.slice(0, 20), orphanRows: drift.removed.slice(0, 20) },
        };
        if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
        else process.stdout.write(`${options.check ? 'checked' : 'reindexed'} ${drift.checked} files: ${drift.addedCount} without a row, ${drift.removedCount} rows without a file${options.check ? ' (nothing changed)' : ' (fixed)'}\n`);
        process.exitCode = options.check && (drift.addedCount || drift.removedCount) ? EXIT.failure : EXIT.ok;
      } finally {
        await runtime.close();
      }
    });
}
