import { isIP } from 'node:net';
import { Cron } from 'croner';
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';

/** A size as bytes or a human string; resolves to bytes. */
const size = z.union([z.number(), z.string()]).transform((value, ctx) => {
  try { return parseSize(value); } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/** A duration as seconds or a human string; resolves to milliseconds. */
const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  try { return parseDuration(value); } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const percent = z.number().min(0).max(100);

/** A size, or a percentage ("50%") of the headroom above the disk reserve. */
const sizeOrPercent = z.union([z.number(), z.string()]).transform((value, ctx): { bytes: number } | { percent: number } => {
  const match = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value) : null;
  if (match) {
    const pct = Number(match[1]);
    if (pct > 0 && pct <= 100) return { percent: pct };
    ctx.addIssue({ code: 'custom', message: `"${String(value)}" must be a percentage above 0 and at most 100` });
    return z.NEVER;
  }
  try { return { bytes: parseSize(value) }; } catch (err) {
    ctx.addIssue({ code: 'custom', message: `${(err as Error).message}, or a percentage of the headroom like "50%"` });
    return z.NEVER;
  }
});

/** A scoped bearer token (docs/design.md §11): what it may do, for which tenants and classes. */
const scopedToken = z.strictObject({
  /** What logs show instead of the token. */
  id: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'an id of 1-64 letters, digits, ".", "_", ":" or "-"'),
  token: z.string().min(16, 'tokens must be at least 16 characters'),
  /** Tenant globs (e.g. "acme-*"); absent: every tenant. */
  tenants: z.array(z.string().min(1)).optional(),
  /** Operations; absent: all of them. */
  can: z.array(z.enum(['read', 'write', 'delete', 'admin'])).optional(),
  /** Storage class globs; absent: every class. */
  classes: z.array(z.string().min(1)).optional(),
});
export type ScopedTokenConfig = z.output<typeof scopedToken>;

/** An address and a prefix length that fits it (BlockList throws at start on anything else). */
function isCidr(value: string): boolean {
  const match = /^([0-9a-fA-F.:]+)\/(\d{1,3})$/.exec(value);
  if (!match) return false;
  const version = isIP(match[1]);
  return version !== 0 && Number(match[2]) <= (version === 4 ? 32 : 128);
}

const cidr = z.string().refine(isCidr, 'must be a CIDR like 10.0.0.0/8 or ::1/128');

const storageClass = z.strictObject({
  /** Globs over the name (`*` within a segment, `**` across segments). */
  match: z.array(z.string().min(1)).default([]),
  /** Whether eviction may ever delete files of this class. */
  evictable: z.boolean().default(false),
  /** Delete files older than this (since upload). */
  maxAge: duration.nullable().default(null),
  /** Delete files not read for this long. */
  maxIdle: duration.nullable().default(null),
  /** Total bytes of the class across tenants. */
  maxBytes: size.nullable().default(null),
  /** Bytes per tenant in this class. */
  maxBytesPerTenant: size.nullable().default(null),
});

/** Active content by default (config/nginx.conf.example lists the same for files nginx sends). */
export const DEFAULT_SANDBOX_EXTENSIONS = ['html', 'htm', 'svg', 'xml', 'xhtml', 'js', 'mjs'];

export const configSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(0).max(65535),
  dataDir: z.string().min(1),
  /**
   * Worker processes serving the one port (src/cluster/): a number, or
   * "auto" = the cores available to the process; 1 runs the node in one
   * process without a primary.
   */
  workers: z.union([z.literal('auto'), z.number().int().min(1), z.string().regex(/^[1-9]\d*$/).transform(Number)], {
    error: 'must be a number of worker processes (1-256) or "auto"',
  }).refine((n) => n === 'auto' || n <= 256, 'must be a number of worker processes (1-256) or "auto"').default('auto'),
  logLevel: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']),
  /** "fsync": file and directory are fsynced before a 201; "none": page cache only. */
  durability: z.enum(['fsync', 'none']),
  upload: z.strictObject({
    maxBytes: size,
    /**
     * How long a removed pub name refuses other bytes (409 name_retired):
     * pub files are served `max-age=31536000, immutable`, so caches may keep
     * the old bytes that long. 0 turns retiring off.
     */
    retirePubNamesFor: duration.default(365 * 86_400_000),
    /** An upload that sends no byte for this long is ended with 408 request_timeout and its holds freed; 0 never. */
    idleTimeout: duration.default(30_000),
  }),
  /** Per-tenant limits against retry storms (docs/design.md §7); null disables one. */
  limits: z.strictObject({
    tenant: z.strictObject({
      uploadsPerMinute: z.number().positive().nullable().default(1200),
      bytesPerMinute: size.nullable().default(8 * 1024 ** 3),
      inflightUploads: z.number().int().min(1).nullable().default(128),
      inflightBytes: sizeOrPercent.nullable().default({ percent: 50 }),
    }).prefault({}),
  }).prefault({}),
  disk: z.strictObject({
    minFreeBytes: size,
    minFreePercent: percent,
    highWatermarkPercent: percent,
    lowWatermarkPercent: percent,
  }).refine((d) => d.lowWatermarkPercent <= d.highWatermarkPercent, {
    message: 'lowWatermarkPercent must not exceed highWatermarkPercent', path: ['lowWatermarkPercent'],
  }),
  auth: z.strictObject({
    /** A string (may do everything) or a scoped token object. */
    /** A string (may do everything) or a scoped token object. */
    tokens: z.array(z.union([z.string().min(16, 'tokens must be at least 16 characters'), scopedToken])),
    trustedNetworks: z.array(cidr),
    signingSecret: z.string().min(16, 'signingSecret must be at least 16 characters').nullable(),
    /** The furthest a signed URL's expires may lie in the future (the server refuses longer ones, `nanocdn sign` too). */
    maxSignedTtl: duration.default(7 * 86_400_000),
  }),
  classes: z.record(z.string().regex(/^[a-z0-9_-]+$/i), storageClass).refine((c) => 'default' in c, {
    message: 'a class named "default" is required',
  }),
  eviction: z.strictObject({
    /** When the eviction pass and the stale-tmp sweep run: a cron expression (5 fields, or 6 with seconds) that fires at some time. */
    schedule: z.string().refine(isCronExpression, {
      error: (issue) => `"${String(issue.input)}" is not a cron expression (e.g. "*/15 * * * *")`,
    }),
    tmpMaxAge: duration,
  }),
  usage: z.strictObject({ topTenants: z.number().int().min(1).max(1000) }),
  monitoring: z.strictObject({ public: z.boolean() }),
  download: z.strictObject({
    /** Answer GETs with X-Accel-Redirect: <prefix><name> for an nginx front. */
    accelRedirect: z.string().regex(/^\/.*\/$/, 'must start and end with "/", e.g. "/_files/"').nullable(),
    /**
     * Extensions of active content (HTML, SVG, XML, scripts): such files are
     * sent with `Content-Security-Policy: sandbox`, so a stored page cannot
     * run script on the download origin. Every file gets `nosniff`.
     */
    sandboxExtensions: z.array(z.string().regex(/^[A-Za-z0-9]+$/, 'an extension without the dot, e.g. "html"'))
      .default(DEFAULT_SANDBOX_EXTENSIONS),
    /**
     * A file answer whose client takes no byte for this long is cut and its
     * file and socket closed (nginx: send_timeout); 0 never cuts.
     */
    sendTimeout: duration.default(60_000),
  }),
  /** Timeouts against slow clients, and the shutdown grace for in-flight uploads. */
  http: z.strictObject({
    headersTimeout: duration.default(20_000),
    requestTimeout: duration.default(600_000),
    keepAliveTimeout: duration.default(5_000),
    shutdownGrace: duration.default(30_000),
    /** Fronts (nginx, a load balancer) whose X-Forwarded-For names the client in access lines; never trusted otherwise. */
    trustedProxies: z.array(cidr).default([]),
    /** Open connections past which a new one is closed at accept (src/http/connection-cap.ts). */
    maxConnections: z.number().int().min(1).default(10_000),
  }).prefault({}),
  /**
   * Where the bytes live: the local data dir ("fs"), an S3-compatible bucket
   * ("s3"), or this process's memory ("memory": not durable, tests and demos).
   */
  storage: z.strictObject({
    engine: z.enum(['fs', 's3', 'memory']).default('fs'),
    s3: z.strictObject({
      endpoint: z.string().url().nullable().default(null),
      region: z.string().default('us-east-1'),
      bucket: z.string().nullable().default(null),
      prefix: z.string().default(''),
      accessKeyId: z.string().nullable().default(null),
      secretAccessKey: z.string().nullable().default(null),
      forcePathStyle: z.boolean().default(true),
      /** What this node may use of the store; the disk guard's "disk size" for s3. */
      capacityBytes: size.nullable().default(null),
    }).prefault({}),
  }).prefault({}),
  /**
   * Where the metadata index lives (docs/design.md §10): "sqlite", a file in
   * the data dir, one node's; or "postgres", a database at `url` that several
   * nodes on one bucket share.
   */
  index: z.strictObject({
    engine: z.enum(['sqlite', 'postgres']).default('sqlite'),
    /** postgres://user:password@host:port/database (env NANOCDN_INDEX_URL). */
    url: z.string().refine((value) => /^postgres(ql)?:\/\/[^/]/.test(value) && URL.canParse(value), {
      error: 'must be a PostgreSQL URL like postgres://user:password@host:5432/database',
    }).nullable().default(null),
  }).prefault({}),
}).superRefine((config, ctx) => {
  // Node refuses to start a server whose requestTimeout is below its headersTimeout (0 disables it).
  if (config.http.requestTimeout !== 0 && config.http.requestTimeout < config.http.headersTimeout) {
    ctx.addIssue({ code: 'custom', path: ['http', 'requestTimeout'], message: `must be at least http.headersTimeout (${config.http.headersTimeout / 1000}s), or 0 for none` });
  }
  if (config.index.engine === 'postgres') {
    if (config.index.url === null) {
      ctx.addIssue({ code: 'custom', path: ['index', 'url'], message: 'is required when index.engine is "postgres" (or set NANOCDN_INDEX_URL)' });
    }
    if (config.storage.engine !== 's3') {
      ctx.addIssue({
        code: 'custom', path: ['index', 'engine'],
        message: `"postgres" needs storage.engine "s3": a shared index is for several nodes on one bucket, but with "${config.storage.engine}" ` +
          'the bytes stay on (or in) one node, so the other nodes would see rows whose files they cannot serve. Use index.engine "sqlite" with it',
      });
    }
  }
  if (config.storage.engine === 's3') {
    for (const key of ['endpoint', 'bucket', 'accessKeyId', 'secretAccessKey', 'capacityBytes'] as const) {
      if (config.storage.s3[key] === null) {
        ctx.addIssue({ code: 'custom', path: ['storage', 's3', key], message: `is required when storage.engine is "s3"` });
      }
    }
  }
});

/** The validated configuration: sizes in bytes, durations in milliseconds. */
export type Config = z.output<typeof configSchema>;
export type StorageClassConfig = z.output<typeof storageClass>;

/** 5 fields, or 6 with seconds (or a nickname such as @daily), that croner parses and that fires at some time (not "0 0 31 2 *"). */
function isCronExpression(expression: string): boolean {
  const fields = expression.trim().split(/\s+/).length;
  if (!expression.trim().startsWith('@') && fields !== 5 && fields !== 6) return false;
  try {
    return new Cron(expression, { paused: true }).nextRun() !== null;
  } catch {
    return false;
  }
}
