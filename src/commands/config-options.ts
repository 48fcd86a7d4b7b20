import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { EXIT, fail } from './exit-codes.js';

/** The flags every command that reads the configuration takes. */
export interface ConfigFlags {
  config?: string;
  dataDir?: string;
}

/** Adds `--config F` and `--data-dir D` (they win over NANOCDN_CONFIG and NANOCDN_DATA_DIR). */
export function withConfigFlags(command: Command): Command {
  return command
    .option('-c, --config <file>', 'JSON config file, merged over config/default.json (instead of $NANOCDN_CONFIG)')
    .option('-d, --data-dir <dir>', 'data directory (instead of dataDir / $NANOCDN_DATA_DIR)');
}

/** The effective configuration for these flags; throws ConfigError. */
export function loadFlags(flags: ConfigFlags): Config {
  return loadConfig(process.env, flags.dataDir ? { dataDir: path.resolve(flags.dataDir) } : {}, flags.config);
}

/** The effective configuration for these flags; a bad one exits 78 with the reason. */
export function configOf(flags: ConfigFlags): Config {
  try {
    return loadFlags(flags);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, EXIT.config);
    throw err;
  }
}
