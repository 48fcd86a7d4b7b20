import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError, resolveConfig } from '../config/load.js';
import { maskSecrets } from '../config/mask.js';
import { EXIT, fail } from './exit-codes.js';
import { withConfigFlags, type ConfigFlags } from './config-options.js';

/**
 * `nanocdn config check [--config F]`, like `nginx -t`: validates the
 * configuration the server would start with and prints it (secrets masked)
 * on stdout, the verdict on stderr; exit 0, or 78 with the reason.
 */
export function registerConfig(program: Command): void {
  const config = program.command('config').description('inspect the configuration');
  withConfigFlags(config.command('check'))
    .description('validate the effective configuration and print it with secrets masked (exit 0, or 78 when invalid)')
    .option('--quiet', 'print only the verdict')
    .action((flags: ConfigFlags & { quiet?: boolean }) => {
      let resolved: ReturnType<typeof resolveConfig>;
      try {
        resolved = resolveConfig(process.env, { configFile: flags.config, overrides: flags.dataDir ? { dataDir: path.resolve(flags.dataDir) } : {} });
      } catch (err) {
        if (err instanceof ConfigError) fail(`configuration is invalid: ${err.message}`, EXIT.config);
        throw err;
      }
      if (!flags.quiet) process.stdout.write(`${JSON.stringify(maskSecrets(resolved.config), null, 2)}\n`);
      const { file, variables } = resolved.sources;
      const from = [`defaults`, file ? `file ${file}` : null, variables.length ? `environment ${variables.join(', ')}` : null].filter(Boolean).join(', ');
      process.stderr.write(`nanocdn: configuration ok (${from})\n`);
    });
}
