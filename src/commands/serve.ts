import type { Command } from 'commander';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { startServer } from '../server.js';
import { applyReload } from '../reload.js';
import { configOf, loadFlags, withConfigFlags, type ConfigFlags } from './config-options.js';

export function registerServe(program: Command): void {
  withConfigFlags(program.command('serve'))
    .description('run the node (config: config/default.json, --config or $NANOCDN_CONFIG, NANOCDN_* variables); SIGHUP reloads tokens, classes and the log level')
    .action(async (flags: ConfigFlags) => {
      let config: Config = configOf(flags);
      const running = await startServer(config);
      const { ctx } = running.runtime;
      const stop = (signal: string) => {
        running.shutdown(signal).then(() => process.exit(0), (err: unknown) => {
          ctx.logger.error('shutdown failed', { error: (err as Error).stack });
          process.exit(1);
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      // systemd's ExecReload and log rotation send SIGHUP: re-read the same sources, never exit.
      process.on('SIGHUP', () => {
        let next: Config;
        try {
          next = loadFlags(flags);
        } catch (err) {
          const reason = err instanceof ConfigError ? err.message : (err as Error).stack;
          ctx.logger.error('reload refused: the configuration is invalid; the running one stays', { signal: 'SIGHUP', reason });
          return;
        }
        const { applied, needsRestart } = applyReload(ctx, config, next);
        config = next;
        ctx.logger.info('configuration reloaded', { signal: 'SIGHUP', applied, needsRestart });
        if (needsRestart.length) ctx.logger.warn(`changes to ${needsRestart.join(', ')} take effect at the next restart`, { signal: 'SIGHUP', needsRestart });
      });
    });
}
