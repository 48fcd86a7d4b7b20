import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HttpError } from '../../src/errors.js';
import { MAX_SEGMENTS, parseEncodedName, parseName, pathOf, type StoredName } from '../../src/names.js';

function refusal(fn: () => unknown): HttpError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).code).toBe('invalid_name');
    expect((err as HttpError).status).toBe(400);
    return err as HttpError;
  }
  throw new Error('expected invalid_name, but the name was accepted');
}

describe('parseName', () => {
  it('accepts a tenant name and derives visibility, tenant and segments', () => {
    const n = parseName('pub/acme/cachedtickets/order-1A2B.3f9c0e1d2b4a5c.pdf');
    expect(n).toEqual({
      name: 'pub/acme/cachedtickets/order-1A2B.3f9c0e1d2b4a5c.pdf',
      visibility: 'pub',
      tenant: 'acme',
      segments: ['pub', 'acme', 'cachedtickets', 'order-1A2B.3f9c0e1d2b4a5c.pdf'],
    });
    expect(parseName('priv/org_2/a').visibility).toBe('priv');
    expect(parseName('priv/org_2/a').tenant).toBe('org_2');
  });

  it('gives files directly under pub/ or priv/ the tenant "-"', () => {
    expect(parseName('pub/file.txt').tenant).toBe('-');
    expect(parseName('priv/file.txt').tenant).toBe('-');
  });

  it('accepts the limits exactly: 255-byte segment, 16 segments, dots inside a segment', () => {
    expect(parseName(`pub/t/${'a'.repeat(255)}`).segments[2]).toHaveLength(255);
    const sixteen = ['pub', ...Array.from({ length: MAX_SEGMENTS - 1 }, (_, i) => `s${i}`)].join('/');
    expect(parseName(sixteen).segments).toHaveLength(16);
    expect(parseName('pub/t/a..b').name).toBe('pub/t/a..b');
    expect(parseName('pub/t/x.').name).toBe('pub/t/x.');
  });

  it.each([
    ['empty', ''],
    ['only a visibility', 'pub'],
    ['a bad visibility', 'public/acme/a.txt'],
    ['upper-case visibility', 'PUB/acme/a.txt'],
    ['a .. segment', 'pub/acme/../a.txt'],
    ['a . segment', 'pub/./a.txt'],
    ['a leading dot', 'pub/acme/.htaccess'],
    ['a leading slash (absolute path)', '/etc/passwd'],
    ['a double slash', 'pub//a.txt'],
    ['a trailing slash', 'pub/acme/'],
    ['a backslash', 'pub/acme/..\\..\\x'],
    ['a NUL byte', 'pub/acme/a\0.txt'],
    ['a space', 'pub/acme/a b.txt'],
    ['a percent sign', 'pub/acme/a%2e.txt'],
    ['non-ASCII', 'pub/acme/é.txt'],
    ['a 256-byte segment', `pub/t/${'a'.repeat(256)}`],
    ['a 300-byte segment', `pub/t/${'a'.repeat(300)}`],
    ['17 segments', ['pub', ...Array.from({ length: 16 }, (_, i) => `s${i}`)].join('/')],
    ['20 segments', ['pub', ...Array.from({ length: 19 }, (_, i) => `s${i}`)].join('/')],
    ['more than 1024 bytes in all', ['pub', ...Array.from({ length: 5 }, () => 'a'.repeat(250))].join('/')],
  ])('refuses %s', (_what, name) => {
    const err = refusal(() => parseName(name));
    expect(err.message).toMatch(/^Invalid name: /);
    expect(err.toJSON()).toMatchObject({ error: 'invalid_name', reason: expect.any(String) });
  });
});

describe('parseEncodedName', () => {
  it('decodes each segment on its own', () => {
    expect(parseEncodedName('pub/acme/a%2Db.txt').name).toBe('pub/acme/a-b.txt');
    expect(parseEncodedName('pub/acme/%41.txt').segments).toEqual(['pub', 'acme', 'A.txt']);
  });

  it.each([
    ['%2e%2e', 'pub/acme/%2e%2e/%2e%2e/x'],
    ['%2E%2E upper case', 'pub/acme/%2E%2E/x'],
    ['..%2f', 'pub/acme/..%2f..%2fx'],
    ['%2f inside a segment', 'pub/acme/a%2fb'],
    ['%5c backslash', 'pub/acme/..%5c..%5cx'],
    ['%00 NUL', 'pub/acme/a%00.txt'],
    ['%20 space', 'pub/acme/a%20b.txt'],
    ['overlong UTF-8 %c0%ae', 'pub/acme/%c0%ae%c0%ae/x'],
    ['a truncated escape', 'pub/acme/a%2'],
    ['a leading dot, encoded', 'pub/acme/%2eenv'],
    ['an absolute path', '/etc/passwd'],
    ['an encoded leading slash', '%2fetc/passwd'],
    ['a literal ..', 'pub/acme/../../x'],
    ['a very long encoded name', `pub/t/${'%41'.repeat(1100)}`],
  ])('refuses %s', (_what, encoded) => {
    refusal(() => parseEncodedName(encoded));
  });
});

describe('pathOf', () => {
  const root = path.resolve('/srv/nanocdn/files');

  it('joins a valid name under the root', () => {
    expect(pathOf(root, parseName('pub/acme/x/y.pdf'))).toBe(path.join(root, 'pub', 'acme', 'x', 'y.pdf'));
    expect(pathOf('/srv/nanocdn/./files/', parseName('pub/y.pdf'))).toBe(path.join(root, 'pub', 'y.pdf'));
  });

  it('refuses a forged name that would escape the root, even if validation was bypassed', () => {
    const forged = (segments: string[]): StoredName => ({ name: segments.join('/'), visibility: 'pub', tenant: 'x', segments });
    refusal(() => pathOf(root, forged(['pub', '..', '..', 'etc', 'passwd'])));
    refusal(() => pathOf(root, forged(['/etc/passwd'])));
    refusal(() => pathOf(root, forged(['..', 'files-sibling', 'x'])));
    refusal(() => pathOf(root, forged(['.'])));
  });
});
