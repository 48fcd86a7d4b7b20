type Json = Record<string, unknown>;

/** Variables whose names do not follow the rule (kept from round 1, or shorter for a secret): always plain strings or comma lists. */
const ALIASES: Record<string, { path: string[]; list?: boolean }> = {
  NANOCDN_TOKENS: { path: ['auth', 'tokens'], list: true },
  NANOCDN_SIGNING_SECRET: { path: ['auth', 'signingSecret'] },
  NANOCDN_S3_ENDPOINT: { path: ['storage', 's3', 'endpoint'] },
  NANOCDN_S3_BUCKET: { path: ['storage', 's3', 'bucket'] },
  NANOCDN_S3_ACCESS_KEY_ID: { path: ['storage', 's3', 'accessKeyId'] },
  NANOCDN_S3_SECRET_ACCESS_KEY: { path: ['storage', 's3', 'secretAccessKey'] },
  // The rule's name would be NANOCDN_INDEX__URL; this one reads like the others a deployment sets.
  NANOCDN_INDEX_URL: { path: ['index', 'url'] },
};

/** Not config keys: the config file's own name. */
const RESERVED = new Set(['NANOCDN_CONFIG']);

/** `TRUSTED_NETWORKS` → `trustedNetworks`. */
function camel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function lookup(tree: unknown, keys: string[]): unknown {
  let node = tree;
  for (const key of keys) node = typeof node === 'object' && node !== null ? (node as Json)[key] : undefined;
  return node;
}

/**
 * One value from the environment, typed by what the key holds in the
 * defaults: strings stay strings; numbers and booleans when they parse (else
 * the string, which validation then names); arrays take a JSON array or a
 * comma list; anything else JSON when it parses, else the string.
 */
function valueOf(raw: string, current: unknown): unknown {
  const trimmed = raw.trim();
  if (typeof current === 'string') return raw;
  if (typeof current === 'number') return /^-?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : raw;
  if (typeof current === 'boolean') return trimmed === 'true' ? true : trimmed === 'false' ? false : raw;
  let parsed: unknown;
  try { parsed = JSON.parse(trimmed); } catch { parsed = undefined; }
  if (Array.isArray(current)) return Array.isArray(parsed) ? parsed : raw.split(',').map((item) => item.trim()).filter(Boolean);
  return parsed ?? raw;
}

/**
 * The NANOCDN_* environment as a partial config, by one rule: strip
 * `NANOCDN_`, split the rest at `__` into the key path, each part from
 * SCREAMING_SNAKE to camelCase: `NANOCDN_AUTH__TRUSTED_NETWORKS` →
 * `auth.trustedNetworks`, `NANOCDN_HTTP__SHUTDOWN_GRACE` → `http.shutdownGrace`.
 * `shape` (the defaults, validated) says each key's type. Variables whose
 * first part names no top-level key are not config and are ignored.
 */
export function configFromEnv(env: NodeJS.ProcessEnv, shape: Json): { values: Json; sources: Map<string, string> } {
  const out: Json = {};
  /** key path ("auth.tokens") → the variable that set it, so errors name the variable. */
  const sources = new Map<string, string>();
  const set = (keys: string[], value: unknown) => {
    let node = out;
    for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Json;
    node[keys[keys.length - 1]] = value;
  };
  const names = Object.keys(env).filter((name) => name.startsWith('NANOCDN_') && !RESERVED.has(name)).sort();
  for (const name of names) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const alias = ALIASES[name];
    if (alias) {
      set(alias.path, alias.list ? raw.split(',').map((t) => t.trim()).filter(Boolean) : raw);
      sources.set(alias.path.join('.'), name);
      continue;
    }
    const keys = name.slice('NANOCDN_'.length).split('__').map(camel);
    if (!(keys[0] in shape) || keys.some((key) => key === '')) continue;
    set(keys, valueOf(raw, lookup(shape, keys)));
    sources.set(keys.join('.'), name);
  }
  return { values: out, sources };
}
