import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DESIGN = 'docs/design.md';
const SCANNED = ['src', 'test', 'scripts', 'bench', 'docs', 'config', 'README.md', 'Dockerfile', 'vitest.config.ts', 'eslint.config.js', 'package.json'];

/** Every text file under the scanned paths (what a person who clones the repository reads). */
function files(rel: string): string[] {
  const full = path.join(ROOT, rel);
  let entries;
  try { entries = readdirSync(full, { withFileTypes: true }); } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') return [rel];
    if (code === 'ENOENT') return [];
    throw err;
  }
  return entries.flatMap((entry) => (entry.name === 'results' && rel === 'bench' ? [] : files(path.join(rel, entry.name))));
}

describe(`citations of ${DESIGN}`, () => {
  const design = readFileSync(path.join(ROOT, DESIGN), 'utf8');
  const sections = new Set([...design.matchAll(/^## §(\d+) /gm)].map((m) => Number(m[1])));
  const texts = SCANNED.flatMap(files).filter((f) => f !== 'test/unit/design-citations.test.ts')
    .map((file) => ({ file, text: readFileSync(path.join(ROOT, file), 'utf8') }));

  it('has numbered sections §1..§n without gaps', () => {
    expect([...sections]).toEqual(Array.from({ length: sections.size }, (_, i) => i + 1));
  });

  it('every "docs/design.md §n" names a section that exists', () => {
    const broken = texts.flatMap(({ file, text }) => [...text.matchAll(/docs\/design\.md ((?:§\d+(?:, )?)+)/g)]
      .flatMap((m) => [...m[1].matchAll(/§(\d+)/g)].map((s) => Number(s[1])))
      .filter((n) => !sections.has(n))
      .map((n) => `${file}: §${n}`));
    expect(broken).toEqual([]);
  });

  it('nothing cites a document outside the repository (the contract or style card by section, the shared folder beside a checkout)', () => {
    // Built from parts, so that this file does not itself read as such a citation.
    const section = '\u00a7';
    const outsideRef = new RegExp(`\\b(?:DESIGN|STYLE)(?:\\.md)? ${section}\\d|\\.\\.\\/shar${'ed'}\\/|DESIGN\\.md|STYLE\\.md`);
    const outside = texts.filter(({ text }) => outsideRef.test(text)).map(({ file }) => file);
    expect(outside).toEqual([]);
  });
});
