import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema, type Config } from './schema.js';

/** A configuration that cannot be used; the CLI exits with EX_CONFIG (78). */
export class ConfigError extends Error {
  readonly exitCode = 78;
}


/** config/default.json of the package, found from src/ (tests) and dist/src/ (built). */
const DEFAULTS_PATH = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'config', 'default.json');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new ConfigError('config/default.json not found next to the package');
    dir = parent;
  }
})();

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

/** The NANOCDN_* environment variables, as a partial config. */
function fromEnv(env: NodeJS.ProcessEnv): Json {
  const out: Json = {};
  const set = (keys: string[], value: unknown) => {
    let node = out;
    for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Json;
    node[keys[keys.length - 1]] = value;
  };
  const num = (name: string, raw: string) => {
    if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be an integer, got "${raw}"`);
    return Number(raw);
  };
  if (env.NANOCDN_HOST) set(['host'], env.NANOCDN_HOST);
  if (env.NANOCDN_PORT) set(['port'], num('NANOCDN_PORT', env.NANOCDN_PORT));
  if (env.NANOCDN_DATA_DIR) set(['dataDir'], env.NANOCDN_DATA_DIR);
  if (env.NANOCDN_LOG_LEVEL) set(['logLevel'], env.NANOCDN_LOG_LEVEL);
  if (env.NANOCDN_TOKENS) set(['auth', 'tokens'], env.NANOCDN_TOKENS.split(',').map((t) => t.trim()).filter(Boolean));
  if (env.NANOCDN_SIGNING_SECRET) set(['auth', 'signingSecret'], env.NANOCDN_SIGNING_SECRET);
  if (env.NANOCDN_S3_ENDPOINT) set(['storage', 's3', 'endpoint'], env.NANOCDN_S3_ENDPOINT);
  if (env.NANOCDN_S3_BUCKET) set(['storage', 's3', 'bucket'], env.NANOCDN_S3_BUCKET);
  if (env.NANOCDN_S3_ACCESS_KEY_ID) set(['storage', 's3', 'accessKeyId'], env.NANOCDN_S3_ACCESS_KEY_ID);
  if (env.NANOCDN_S3_SECRET_ACCESS_KEY) set(['storage', 's3', 'secretAccessKey'], env.NANOCDN_S3_SECRET_ACCESS_KEY);
  return out;
}

/** Validates a merged config object; errors name the offending key. */
function parseConfig(raw: Json): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.join('.') || '(top level)';
      if (issue.code === 'unrecognized_keys') {
        const prefix = issue.path.length ? `${issue.path.join('.')}.` : '';
        return `unknown key ${issue.keys.map((k) => `"${prefix}${k}"`).join(', ')}`;
      }
      return `"${key}": ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  return deepFreeze(result.data);
}

/** default.json, then the file named by NANOCDN_CONFIG, then NANOCDN_* variables. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Json = {}): Config {
  let raw = readJson(DEFAULTS_PATH);
  if (env.NANOCDN_CONFIG) raw = deepMerge(raw, readJson(path.resolve(env.NANOCDN_CONFIG)));
  raw = deepMerge(deepMerge(raw, fromEnv(env)), overrides);
  return parseConfig(raw);
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
