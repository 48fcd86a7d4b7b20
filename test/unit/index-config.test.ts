import { describe, expect, it } from 'vitest';
import { configWith, loadConfig } from '../../src/config/load.js';
import { maskSecrets, maskUrlPassword } from '../../src/config/mask.js';
import { configError } from '../helpers/config-error.js';

/** index.engine and index.url (docs/design.md §10, §12). */
const S3 = {
  engine: 's3',
  s3: { endpoint: 'http://127.0.0.1:9000', bucket: 'b', accessKeyId: 'k', secretAccessKey: 'secret-key-0123', capacityBytes: '1GiB' },
};
const URL_WITH_PASSWORD = 'postgres://nanocdn:pg-password-do-not-print@db.internal:5432/nanocdn';

describe('index.engine and index.url in the config', () => {
  it('defaults to the SQLite index in the data dir', () => {
    expect(configWith({}).index).toEqual({ engine: 'sqlite', url: null });
  });

  it('takes postgres with a URL on the s3 engine, from a file or from NANOCDN_INDEX_URL / NANOCDN_INDEX__ENGINE', () => {
    expect(configWith({ storage: S3, index: { engine: 'postgres', url: URL_WITH_PASSWORD } }).index).toEqual({ engine: 'postgres', url: URL_WITH_PASSWORD });
    const config = loadConfig({
      NANOCDN_INDEX__ENGINE: 'postgres', NANOCDN_INDEX_URL: 'postgresql://u:p@127.0.0.1/db', NANOCDN_STORAGE__ENGINE: 's3',
      NANOCDN_S3_ENDPOINT: 'http://127.0.0.1:9000', NANOCDN_S3_BUCKET: 'b', NANOCDN_S3_ACCESS_KEY_ID: 'k', NANOCDN_S3_SECRET_ACCESS_KEY: 's',
      NANOCDN_STORAGE__S3__CAPACITY_BYTES: '1GiB',
    });
    expect(config.index).toEqual({ engine: 'postgres', url: 'postgresql://u:p@127.0.0.1/db' });
    expect(loadConfig({ NANOCDN_INDEX__URL: 'postgres://h/db' }).index.url).toBe('postgres://h/db');
  });

  it('refuses postgres without a URL, a URL that is not PostgreSQL\'s, and an unknown engine, naming the key', () => {
    expect(configError(() => configWith({ storage: S3, index: { engine: 'postgres' } })).message).toMatch(/index\.url.*required.*NANOCDN_INDEX_URL/s);
    expect(configError(() => configWith({ index: { url: 'mysql://h/db' } })).message).toContain('index.url');
    expect(configError(() => configWith({ index: { url: 'postgres://' } })).message).toContain('index.url');
    expect(configError(() => configWith({ index: { engine: 'mysql' } })).message).toContain('index.engine');
    const env = configError(() => loadConfig({ NANOCDN_INDEX_URL: 'not a url' }));
    expect(env.message).toContain('NANOCDN_INDEX_URL');
  });

  it('refuses postgres with the fs or memory engine, saying why (bytes on one node, a shared index)', () => {
    for (const engine of ['fs', 'memory']) {
      const message = configError(() => configWith({ storage: { engine }, index: { engine: 'postgres', url: URL_WITH_PASSWORD } })).message;
      expect(message).toContain('index.engine');
      expect(message).toContain('storage.engine "s3"');
      expect(message).toContain(`with "${engine}" the bytes stay on (or in) one node`);
    }
  });

  it('config check shows the URL without its password', () => {
    const masked = JSON.stringify(maskSecrets(configWith({ storage: S3, index: { engine: 'postgres', url: URL_WITH_PASSWORD } })));
    expect(masked).not.toContain('pg-password-do-not-print');
    expect(masked).toContain('postgres://nanocdn:********@db.internal:5432/nanocdn');
    expect(maskUrlPassword('postgres://u@h/db?sslmode=require&password=secret')).toBe('postgres://u@h/db?sslmode=require&password=********');
    expect(maskUrlPassword('postgres://h/db')).toBe('postgres://h/db');
    expect(JSON.stringify(maskSecrets(configWith({})))).toContain('"index":{"engine":"sqlite","url":null}');
  });
});
