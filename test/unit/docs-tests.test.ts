import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PAGE = 'docs/testing-core.md';

/** Test files and helpers under test/ (what a reader of the page needs to find). */
function testFiles(dir = path.join(ROOT, 'test')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(full);
    return entry.name.endsWith('.ts') ? [path.relative(ROOT, full)] : [];
  });
}

describe(PAGE, () => {
  const page = readFileSync(path.join(ROOT, PAGE), 'utf8');
  const listed = new Set([...page.matchAll(/`(test\/[^`\s*]+\.(?:ts|yml))`/g)].map((m) => m[1]));

  it('lists every test file and helper of test/', () => {
    const missing = testFiles().filter((file) => !listed.has(file));
    expect(missing, `add a row for each to ${PAGE}`).toEqual([]);
  });

  it('lists no file that is gone', () => {
    const gone = [...listed].filter((file) => !existsSync(path.join(ROOT, file)));
    expect(gone, `remove their rows from ${PAGE}`).toEqual([]);
  });
});
