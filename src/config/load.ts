import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../package-root.js';
import { configSchema, type Config } from './schema.js';
import { ConfigError } from './errors.js';
import { configFromEnv } from './env.js';

export { ConfigError };

/** config/default.json of the package. */
const DEFAULTS_PATH = path.join(PACKAGE_ROOT, 'config', 'default.json');

type Json = Record<string, unknown>;

function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep merge: objects merge key by key, everything else (arrays too) replaces. */
export function deepMerge(base: Json, override: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(override)) {
    out[key] = isPlainObject(value) && isPlainObject(out[key]) ? deepMerge(out[key], value) : value;
  }
  return out;
}

function readJson(file: string): Json {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isPlainObject(parsed)) throw new Error('the top level must be an object');
    return parsed;
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * A config file over what is below it: a deep merge, except that the file's
 * `classes`, when present, replace the shipped ones whole (the first matching
 * class wins, so a shipped class merged in could not be turned off).
 */
export function mergeFile(base: Json, file: Json): Json {
  const merged = deepMerge(base, file);
  if (isPlainObject(file.classes)) merged.classes = file.classes;
  return merged;
}

/** Validates a merged config object; errors name the offending key. */
function parseConfig(raw: Json, envSources: ReadonlyMap<string, string> = new Map()): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.join('.') || '(top level)';
      if (issue.code === 'unrecognized_keys') {
        const prefix = issue.path.length ? `${issue.path.join('.')}.` : '';
        return `unknown key ${issue.keys.map((k) => `"${prefix}${k}"`).join(', ')}`;
      }
      const variable = [...envSources].find(([source]) => key === source || key.startsWith(`${source}.`))?.[1];
      return `"${key}"${variable ? ` (from ${variable})` : ''}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  return deepFreeze(result.data);
}

/** Where the effective configuration came from (for `nanocdn config check`). */
export interface ConfigSources {
  /** The config file read, absolute; null when none. */
  readonly file: string | null;
  /** The NANOCDN_* variables that set keys. */
  readonly variables: readonly string[];
}

export interface LoadOptions {
  /** A config file (the --config flag); wins over NANOCDN_CONFIG. */
  configFile?: string;
  /** Keys set last, over the environment (e.g. the --data-dir flag). */
  overrides?: Json;
}

/** default.json, then the config file (--config or NANOCDN_CONFIG), then NANOCDN_* variables, then flags. */
export function resolveConfig(env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): { config: Config; sources: ConfigSources } {
  const defaults = readJson(DEFAULTS_PATH);
  let raw = defaults;
  const fileName = options.configFile ?? env.NANOCDN_CONFIG;
  const file = fileName ? path.resolve(fileName) : null;
  if (file) raw = mergeFile(raw, readJson(file));
  const fromEnv = configFromEnv(env, parseConfig(defaults));
  raw = deepMerge(deepMerge(raw, fromEnv.values), options.overrides ?? {});
  return { config: parseConfig(raw, fromEnv.sources), sources: { file, variables: [...new Set(fromEnv.sources.values())] } };
}

/** The effective configuration (see resolveConfig). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Json = {}, configFile?: string): Config {
  return resolveConfig(env, { overrides, configFile }).config;
}

/** The defaults merged with overrides, without reading the environment (tests). */
export function configWith(overrides: Json = {}): Config {
  return parseConfig(deepMerge(readJson(DEFAULTS_PATH), overrides));
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
