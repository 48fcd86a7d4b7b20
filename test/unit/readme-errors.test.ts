import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors.js';

const README = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');

/** The rows of the README's error table: `| \`code\` [/ \`code\`] | status | when |`. */
function documentedErrors(): Map<string, number> {
  const start = README.indexOf('| code | status | when |');
  expect(start, 'README has the error table').toBeGreaterThan(-1);
  const rows = README.slice(start).split('\n').slice(2);
  const documented = new Map<string, number>();
  for (const row of rows) {
    if (!row.startsWith('|')) break;
    const [codes, status] = row.split('|').slice(1, 3);
    for (const [, code] of codes.matchAll(/`([a-z_]+)`/g)) documented.set(code, Number(status.trim()));
  }
  return documented;
}

describe('README error table', () => {
  it('lists every code of src/errors.ts with its status, and no other', () => {
    const table = Object.fromEntries(Object.entries(ERRORS).map(([code, [status]]) => [code, status]));
    expect(Object.fromEntries(documentedErrors())).toEqual(table);
  });
});
