import { describe, expect, it } from 'vitest';
import { configWith, loadConfig } from '../../src/config/load.js';
import { maskSecrets } from '../../src/config/mask.js';
import { tokenId } from '../../src/token-id.js';
import { configError } from '../helpers/config-error.js';

/** The config keys of tenant limits, idle uploads and scoped tokens (docs/design.md §7, §11, §12). */
describe('limits.tenant, upload.idleTimeout and scoped tokens in the config', () => {
  it('has generous limits and a 30 s idle timeout by default', () => {
    const config = configWith({});
    expect(config.limits.tenant).toEqual({ uploadsPerMinute: 1200, bytesPerMinute: 8 * 1024 ** 3, inflightUploads: 128, inflightBytes: { percent: 50 } });
    expect(config.upload.idleTimeout).toBe(30_000);
  });

  it('takes sizes or a percentage for inflightBytes, null to disable any limit, and refuses nonsense naming the key', () => {
    expect(configWith({ limits: { tenant: { inflightBytes: '2GiB' } } }).limits.tenant.inflightBytes).toEqual({ bytes: 2 * 1024 ** 3 });
    expect(configWith({ limits: { tenant: { inflightBytes: '25 %', uploadsPerMinute: null } } }).limits.tenant).toMatchObject({ inflightBytes: { percent: 25 }, uploadsPerMinute: null });
    expect(configError(() => configWith({ limits: { tenant: { inflightBytes: '150%' } } })).message).toContain('limits.tenant.inflightBytes');
    expect(configError(() => configWith({ limits: { tenant: { uploadsPerMinute: -1 } } })).message).toContain('limits.tenant.uploadsPerMinute');
    expect(configError(() => configWith({ limits: { tenant: { perHour: 1 } } })).message).toContain('perHour');
  });

  it('reads the limits from NANOCDN_LIMITS__TENANT__* and the idle timeout from NANOCDN_UPLOAD__IDLE_TIMEOUT', () => {
    const config = loadConfig({ NANOCDN_LIMITS__TENANT__UPLOADS_PER_MINUTE: '60', NANOCDN_LIMITS__TENANT__INFLIGHT_BYTES: '10%', NANOCDN_UPLOAD__IDLE_TIMEOUT: '5s' });
    expect(config.limits.tenant).toMatchObject({ uploadsPerMinute: 60, inflightBytes: { percent: 10 } });
    expect(config.upload.idleTimeout).toBe(5000);
  });

  it('takes scoped token objects next to plain strings; NANOCDN_TOKENS stays a list of strings; config check masks both', () => {
    const scoped = { id: 'workers-acme', token: 'acme-token-0123456789abcdef', tenants: ['acme', 'acme-*'], can: ['read', 'write'], classes: ['cache'] };
    const config = configWith({ auth: { tokens: ['plain-token-0123456789abcdef', scoped] } });
    expect(config.auth.tokens).toEqual(['plain-token-0123456789abcdef', scoped]);
    expect(loadConfig({ NANOCDN_TOKENS: 'aaaaaaaaaaaaaaaa1,bbbbbbbbbbbbbbbb2' }).auth.tokens).toEqual(['aaaaaaaaaaaaaaaa1', 'bbbbbbbbbbbbbbbb2']);
    const masked = JSON.stringify(maskSecrets(config));
    expect(masked).not.toContain('0123456789abcdef');
    expect(masked).toContain(tokenId('plain-token-0123456789abcdef'));
    expect(masked).toContain('"id":"workers-acme"');
    expect(configError(() => configWith({ auth: { tokens: [{ ...scoped, can: ['upload'] }] } })).message).toContain('auth.tokens');
    expect(configError(() => configWith({ auth: { tokens: [{ ...scoped, token: 'short' }] } })).message).toContain('auth.tokens');
    expect(configError(() => configWith({ auth: { tokens: [{ ...scoped, tenant: ['x'] }] } })).message).toContain('auth.tokens');
  });
});
