// `nanocdn reindex --check` (spawned, on real files): a file whose size or
// bytes differ from its row is reported as changed, apart from a stored file
// without a row and a row without a file.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/spawn-server.js';

interface Check {
  checked: number; missingRows: number; orphanRows: number; changedRows: number; drift: boolean;
  sample: { missingRows: string[]; orphanRows: string[]; changedRows: { name: string; why: string; size: number; rowSize: number }[] };
}

describe('nanocdn reindex --check tells a changed file from a missing row or file', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-reindex-'));
  const file = (name: string) => path.join(dataDir, 'files', name);
  const put = (name: string, body: string) => {
    mkdirSync(path.dirname(file(name)), { recursive: true });
    writeFileSync(file(name), body);
  };
  const nanocdn = (args: string[]) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('NANOCDN_')));
    return spawnSync(process.execPath, [CLI, ...args, '--data-dir', dataDir], { env: clean, encoding: 'utf8', timeout: 30_000 });
  };

  beforeAll(() => {
    put('pub/acme/truncated.bin', 'x'.repeat(1000));
    put('pub/acme/flipped.bin', 'abcdefgh');
    put('pub/acme/fine.bin', 'unchanged');
    put('pub/acme/gone.bin', 'soon gone');
    const built = nanocdn(['reindex']);
    expect(built.status, built.stderr).toBe(0);
    truncateSync(file('pub/acme/truncated.bin'), 400);
    writeFileSync(file('pub/acme/flipped.bin'), 'abcdefgX');
    rmSync(file('pub/acme/gone.bin'));
    put('pub/acme/new.bin', 'no row yet');
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('--json: a truncated file and a same-size content change are changed rows, not missing rows', () => {
    const run = nanocdn(['reindex', '--check', '--json']);
    expect(run.status, run.stderr).toBe(1);
    const check = JSON.parse(run.stdout) as Check;
    expect(check).toMatchObject({ checked: 4, missingRows: 1, orphanRows: 1, changedRows: 2, drift: true });
    expect(check.sample.missingRows).toEqual(['pub/acme/new.bin']);
    expect(check.sample.orphanRows).toEqual(['pub/acme/gone.bin']);
    expect([...check.sample.changedRows].sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: 'pub/acme/flipped.bin', why: 'sha256', size: 8, rowSize: 8 },
      { name: 'pub/acme/truncated.bin', why: 'size', size: 400, rowSize: 1000 },
    ]);
  });

  it('human output names each kind on its own line', () => {
    const run = nanocdn(['reindex', '--check']);
    expect(run.status, run.stderr).toBe(1);
    expect(run.stdout).toContain('1 without a row, 1 rows without a file, 2 changed');
    expect(run.stdout).toMatch(/^ {2}no row: {2}pub\/acme\/new\.bin$/m);
    expect(run.stdout).toMatch(/^ {2}no file: pub\/acme\/gone\.bin$/m);
    expect(run.stdout).toMatch(/^ {2}changed: pub\/acme\/truncated\.bin \(size 400, the row says 1000\)$/m);
    expect(run.stdout).toMatch(/^ {2}changed: pub\/acme\/flipped\.bin \(same size, bytes differ from the row's sha256\)$/m);
    expect(run.stdout).not.toMatch(/no row: {2}pub\/acme\/(truncated|flipped)/);
  });

  it('--sizes-only skips reading the bytes: the same-size change goes unseen, the truncation does not', () => {
    const check = JSON.parse(nanocdn(['reindex', '--check', '--json', '--sizes-only']).stdout) as Check;
    expect(check.changedRows).toBe(1);
    expect(check.sample.changedRows.map((c) => c.name)).toEqual(['pub/acme/truncated.bin']);
  });
});
