import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configWith, deepMerge, loadConfig } from '../../src/config/load.js';
import { Authenticator } from '../../src/http/auth.js';
import { configError } from '../helpers/config-error.js';

const REPO = path.resolve(import.meta.dirname, '../..');

function configFile(content: unknown): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'nanocdn-cfgtest-')), 'config.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('config', () => {
  it('config/default.json has exactly the keys of docs/design.md §12', () => {
    const defaults = JSON.parse(readFileSync(path.join(REPO, 'config', 'default.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(defaults).sort()).toEqual([
      'auth', 'classes', 'dataDir', 'disk', 'download', 'durability', 'eviction', 'host', 'logLevel', 'monitoring', 'port', 'upload', 'usage',
    ]);
  });

  it('the defaults run as is: 0.0.0.0:8080, ./data, sizes in bytes, durations in ms, frozen', () => {
    const config = loadConfig({});
    expect(config.host).toBe('0.0.0.0');
    expect(config.port).toBe(8080);
    expect(config.dataDir).toBe('./data');
    expect(config.upload.maxBytes).toBe(512 * 1024 ** 2);
    expect(config.disk.minFreeBytes).toBe(1024 ** 3);
    expect(config.auth.trustedNetworks).toEqual(['127.0.0.0/8', '::1/128']);
    expect(config.auth.tokens).toEqual([]);
    expect(config.auth.signingSecret).toBeNull();
    expect(config.classes.cache.maxAge).toBe(30 * 86_400_000);
    expect(config.classes.cache.maxBytesPerTenant).toBe(5 * 1024 ** 3);
    expect(config.classes.default.evictable).toBe(false);
    expect(config.eviction.tmpMaxAge).toBe(3_600_000);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.auth.tokens)).toBe(true);
    expect(() => { (config as { port: number }).port = 1; }).toThrow(TypeError);
  });

  it('merges default.json ← NANOCDN_CONFIG file ← NANOCDN_* environment', () => {
    const file = configFile({ port: 9000, host: '127.0.0.1', upload: { maxBytes: '1MiB' }, auth: { tokens: ['file-token-0123456789'] } });
    const config = loadConfig({
      NANOCDN_CONFIG: file, NANOCDN_PORT: '9100', NANOCDN_DATA_DIR: '/var/nanocdn',
      NANOCDN_TOKENS: 'env-token-0123456789a, env-token-0123456789b', NANOCDN_SIGNING_SECRET: 'env-secret-0123456789', NANOCDN_LOG_LEVEL: 'warn',
    });
    expect(config.port).toBe(9100);
    expect(config.host).toBe('127.0.0.1');
    expect(config.dataDir).toBe('/var/nanocdn');
    expect(config.logLevel).toBe('warn');
    expect(config.upload.maxBytes).toBe(1024 ** 2);
    expect(config.auth.tokens).toEqual(['env-token-0123456789a', 'env-token-0123456789b']);
    expect(config.auth.signingSecret).toBe('env-secret-0123456789');
    // Deep merge keeps sibling keys of a partially overridden object.
    expect(config.auth.trustedNetworks).toEqual(['127.0.0.0/8', '::1/128']);
    expect(config.disk.minFreePercent).toBe(5);
  });

  it('deepMerge merges objects key by key and replaces arrays', () => {
    expect(deepMerge({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] } })).toEqual({ a: { b: 1, c: [3] }, d: 1 });
  });

  it('refuses an unknown top-level key, naming it', () => {
    const err = configError(() => loadConfig({ NANOCDN_CONFIG: configFile({ prot: 8080 }) }));
    expect(err.message).toContain('"prot"');
  });

  it('refuses an unknown nested key with its full path', () => {
    const err = configError(() => loadConfig({ NANOCDN_CONFIG: configFile({ disk: { minFreeByte: '1GiB' } }) }));
    expect(err.message).toContain('disk.minFreeByte');
  });

  it.each([
    ['a bad size', { upload: { maxBytes: '12 parsecs' } }, 'upload.maxBytes'],
    ['a negative size', { disk: { minFreeBytes: -5 } }, 'disk.minFreeBytes'],
    ['a bad duration', { eviction: { tmpMaxAge: 'soon' } }, 'eviction.tmpMaxAge'],
    ['a bad class size', { classes: { cache: { maxBytesPerTenant: 'lots' } } }, 'classes.cache.maxBytesPerTenant'],
    ['a port out of range', { port: 70000 }, 'port'],
    ['a percent above 100', { disk: { minFreePercent: 101 } }, 'disk.minFreePercent'],
    ['a low watermark above the high one', { disk: { lowWatermarkPercent: 90, highWatermarkPercent: 80 } }, 'disk.lowWatermarkPercent'],
    ['a short token', { auth: { tokens: ['short'] } }, 'auth.tokens.0'],
    ['a malformed trusted network', { auth: { trustedNetworks: ['localhost'] } }, 'auth.trustedNetworks.0'],
    ['a trusted network without a prefix', { auth: { trustedNetworks: ['10.0.0.1'] } }, 'auth.trustedNetworks.0'],
    ['an IPv4 prefix over 32', { auth: { trustedNetworks: ['127.0.0.0/8', '10.0.0.0/33'] } }, 'auth.trustedNetworks.1'],
    ['an IPv6 prefix over 128', { auth: { trustedNetworks: ['fd00::/129'] } }, 'auth.trustedNetworks.0'],
    ['an address that is not one', { auth: { trustedNetworks: ['999.1.1.1/8'] } }, 'auth.trustedNetworks.0'],
    ['an unknown durability', { durability: 'sometimes' }, 'durability'],
    ['no default class', { classes: { default: null } }, 'classes.default'],
    ['a schedule that is not a cron expression', { eviction: { schedule: 'every 15 minutes' } }, 'eviction.schedule'],
    ['an empty schedule', { eviction: { schedule: '' } }, 'eviction.schedule'],
    ['a schedule with 7 fields', { eviction: { schedule: '0 0 0 * * * 2030' } }, 'eviction.schedule'],
    ['a schedule minute out of range', { eviction: { schedule: '60 * * * *' } }, 'eviction.schedule'],
    ['a schedule that never fires', { eviction: { schedule: '0 0 31 2 *' } }, 'eviction.schedule'],
  ])('refuses %s, naming the key', (_what, override, key) => {
    const err = configError(() => configWith(override));
    expect(err.message).toContain(`"${key}"`);
  });

  it('accepts IPv4 and IPv6 networks and builds an authenticator from them', () => {
    const config = configWith({ auth: { tokens: [], trustedNetworks: ['10.0.0.0/8', '192.168.1.7/32', 'fd00::/8', '::1/128', '0.0.0.0/0'], signingSecret: null } });
    expect(() => new Authenticator(config.auth.tokens, config.auth.trustedNetworks)).not.toThrow();
  });

  it('refuses a bad eviction.schedule when the config loads, saying what it got', () => {
    const err = configError(() => configWith({ eviction: { schedule: '*/15 * * *' } }));
    expect(err.message).toBe('invalid configuration: "eviction.schedule": "*/15 * * *" is not a cron expression (e.g. "*/15 * * * *")');
    for (const schedule of ['*/1 * * * * *', '0,30 8-18/2 * * mon-fri', '0 3 1 jan *', '@daily']) {
      expect(configWith({ eviction: { schedule } }).eviction.schedule).toBe(schedule);
    }
  });

  it('refuses a config file that is not JSON or not an object, naming the file', () => {
    const bad = configFile('{ "port": ');
    expect(configError(() => loadConfig({ NANOCDN_CONFIG: bad })).message).toContain(bad);
    expect(configError(() => loadConfig({ NANOCDN_CONFIG: configFile([1, 2]) })).message).toContain('object');
    expect(configError(() => loadConfig({ NANOCDN_CONFIG: '/nonexistent/nanocdn.json' })).message).toContain('/nonexistent/nanocdn.json');
  });

  it('refuses a non-numeric NANOCDN_PORT, naming the variable', () => {
    expect(configError(() => loadConfig({ NANOCDN_PORT: '80a' })).message).toContain('NANOCDN_PORT');
  });

  it('a config file\'s classes replace the shipped ones: an archive class for exports is not left in cache', () => {
    const file = configFile({ classes: {
      archive: { match: ['*/*/exports/**'], evictable: false },
      default: { evictable: false },
    } });
    const config = loadConfig({ NANOCDN_CONFIG: file });
    expect(Object.keys(config.classes)).toEqual(['archive', 'default']);
    // Everything else still deep-merges with the defaults.
    expect(config.disk.minFreePercent).toBe(5);
  });

  it('a config file without a default class among its classes is refused', () => {
    const err = configError(() => loadConfig({ NANOCDN_CONFIG: configFile({ classes: { archive: { match: ['**'] } } }) }));
    expect(err.message).toContain('"default"');
  });

  it('a --config file wins over NANOCDN_CONFIG', () => {
    const config = loadConfig({ NANOCDN_CONFIG: configFile({ port: 1111 }) }, {}, configFile({ port: 2222 }));
    expect(config.port).toBe(2222);
  });

  it('every key is settable from the environment: NANOCDN_<KEY>__<KEY>, JSON or comma lists', () => {
    const config = loadConfig({
      NANOCDN_AUTH__TRUSTED_NETWORKS: '["10.0.0.0/8","fd00::/8"]',
      NANOCDN_MONITORING__PUBLIC: 'true',
      NANOCDN_HTTP__SHUTDOWN_GRACE: '45s',
      NANOCDN_DISK__MIN_FREE_PERCENT: '7',
      NANOCDN_UPLOAD__MAX_BYTES: '1MiB',
      NANOCDN_DOWNLOAD__ACCEL_REDIRECT: '/_files/',
      NANOCDN_CLASSES__CACHE__MAX_AGE: '2d',
      NANOCDN_USAGE__TOP_TENANTS: '5',
      NANOCDN_WRK_JSON: 'not config: ignored',
    });
    expect(config.auth.trustedNetworks).toEqual(['10.0.0.0/8', 'fd00::/8']);
    expect(config.monitoring.public).toBe(true);
    expect(config.http.shutdownGrace).toBe(45_000);
    expect(config.disk.minFreePercent).toBe(7);
    expect(config.upload.maxBytes).toBe(1024 ** 2);
    expect(config.download.accelRedirect).toBe('/_files/');
    expect(config.classes.cache.maxAge).toBe(2 * 86_400_000);
    expect(config.classes.cache.maxIdle).toBe(7 * 86_400_000);
    expect(config.usage.topTenants).toBe(5);
    expect(loadConfig({ NANOCDN_AUTH__TRUSTED_NETWORKS: '10.0.0.0/8, 192.168.0.0/16' }).auth.trustedNetworks).toEqual(['10.0.0.0/8', '192.168.0.0/16']);
    expect(loadConfig({ NANOCDN_AUTH__TOKENS: '["env-token-0123456789a"]' }).auth.tokens).toEqual(['env-token-0123456789a']);
  });

  it('a bad or misspelt variable is refused, naming the variable', () => {
    expect(configError(() => loadConfig({ NANOCDN_MONITORING__PUBLIK: 'true' })).message).toContain('monitoring.publik');
    expect(configError(() => loadConfig({ NANOCDN_AUTH__TRUSTED_NETWORKS: 'localhost' })).message).toContain('NANOCDN_AUTH__TRUSTED_NETWORKS');
    expect(configError(() => loadConfig({ NANOCDN_MONITORING__PUBLIC: 'yes' })).message).toContain('NANOCDN_MONITORING__PUBLIC');
  });

  it('upload.retirePubNamesFor: 365 days (the pub max-age) by default, a duration or 0 (off), from a file or the environment', () => {
    expect(loadConfig({}).upload.retirePubNamesFor).toBe(365 * 86_400_000);
    expect(loadConfig({ NANOCDN_CONFIG: configFile({ upload: { retirePubNamesFor: '30d' } }) }).upload.retirePubNamesFor).toBe(30 * 86_400_000);
    expect(loadConfig({ NANOCDN_UPLOAD__RETIRE_PUB_NAMES_FOR: '0' }).upload.retirePubNamesFor).toBe(0);
    expect(loadConfig({ NANOCDN_UPLOAD__RETIRE_PUB_NAMES_FOR: '90d' }).upload.retirePubNamesFor).toBe(90 * 86_400_000);
    expect(configError(() => loadConfig({ NANOCDN_UPLOAD__RETIRE_PUB_NAMES_FOR: 'forever' })).message).toContain('NANOCDN_UPLOAD__RETIRE_PUB_NAMES_FOR');
    expect(configError(() => loadConfig({ NANOCDN_CONFIG: configFile({ upload: { retirePubNamesFor: -1 } }) })).message).toContain('upload.retirePubNamesFor');
  });
});
