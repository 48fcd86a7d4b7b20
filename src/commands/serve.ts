import cluster from 'node:cluster';
import type { Command } from 'commander';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { NodeContext } from '../context.js';
import { applyReload } from '../reload.js';
import { workerCount } from '../cluster/workers.js';
import { configOf, loadFlags, withConfigFlags, type ConfigFlags } from './config-options.js';

export function registerServe(program: Command): void {
  withConfigFlags(program.command('serve'))
    .description('run the node (config: config/default.json, --config or $NANOCDN_CONFIG, NANOCDN_* variables); SIGHUP reloads tokens, classes and the log level')
    .action(async (flags: ConfigFlags) => {
      const config: Config = configOf(flags);
      // The memory engine keeps files inside one process: it never forks.
      const workers = config.storage.engine === 'memory' ? 1 : workerCount(config);
      if (cluster.isWorker) {
        const { runWorker } = await import('../cluster/worker.js');
        return runWorker(config, (ctx) => reloadOnSighup(ctx, flags, config));
      }
      if (workers > 1) {
        const { runPrimary } = await import('../cluster/primary.js');
        return runPrimary(config, workers, (ctx) => reloadOnSighup(ctx, flags, config));
      }
      // The HTTP server (Express, multer) loads where it serves: never in a clustered node's primary.
      const { startServer } = await import('../server.js');
      const running = await startServer(config);
      const { ctx } = running.runtime;
      stopOnSignals(ctx, (signal) => running.shutdown(signal));
      reloadOnSighup(ctx, flags, config);
    });
}

/** SIGTERM and SIGINT stop the node gracefully: exit 0 once stopped, 1 when stopping failed. */
export function stopOnSignals(ctx: Pick<NodeContext, 'logger'>, shutdown: (signal: string) => Promise<void>): void {
  const stop = (signal: string) => {
    shutdown(signal).then(() => process.exit(0), (err: unknown) => {
      ctx.logger.error('shutdown failed', { error: (err as Error).stack });
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/** systemd's ExecReload and log rotation send SIGHUP: re-read the same sources, apply what reloads, never exit. */
function reloadOnSighup(ctx: Pick<NodeContext, 'logger' | 'auth' | 'classifier'>, flags: ConfigFlags, initial: Config): void {
  let config = initial;
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
}
