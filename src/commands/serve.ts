import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { startServer } from '../server.js';

export function registerServe(program: Command): void {
  program.command('serve')
    .description('run the node (config: config/default.json, $NANOCDN_CONFIG, NANOCDN_* variables)')
    .action(async () => {
      const running = await startServer(loadConfig());
      const stop = (signal: string) => {
        running.shutdown(signal).then(() => process.exit(0), (err: unknown) => {
          running.runtime.ctx.logger.error('shutdown failed', { error: (err as Error).stack });
          process.exit(1);
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
