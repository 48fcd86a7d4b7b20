import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The index owns its schema: no SQL outside src/index/ (and the tests of
 * the SQLite engine, test/index/, which write databases as older code did).
 * Anything else asks the index through src/index/index.ts.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const SCANNED = ['src', 'test', 'bench', 'scripts'];
const ALLOWED = ['src/index/', 'test/index/'];

/** One rule: what it finds, and why it counts as SQL. */
const RULES: { why: string; pattern: RegExp }[] = [
  { why: 'imports the SQLite driver', pattern: /from\s+['"]better-sqlite3['"]/ },
  { why: 'prepares a statement', pattern: /\.prepare\s*(<[^>]*>)?\s*\(/ },
  // A regex's .exec() takes the subject string; a database's takes SQL text, so only a literal argument counts.
  { why: 'executes SQL text', pattern: /\.exec\s*\(\s*(['"]|`(?!\$\{))/ },
  { why: 'sets a pragma', pattern: /\.pragma\s*\(/ },
  // After a quote, or at the start of a line (the lines of a multi-line template literal).
  { why: 'contains a SQL statement', pattern: /(^|[`'"])\s*(SELECT\s+[\w*(]|INSERT\s+(OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|CREATE\s+(TABLE|(UNIQUE\s+)?INDEX|TRIGGER)\s|DROP\s+(TABLE|INDEX)\s|PRAGMA\s)/ },
];

/** The SQL found in one file's text: "line: why". */
export function sqlIn(text: string): string[] {
  const found: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const rule of RULES) if (rule.pattern.test(line)) found.push(`${i + 1}: ${rule.why}: ${line.trim()}`);
  });
  return found;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...sourceFiles(rel));
    else if (/\.(ts|js|mjs|cjs)$/.test(entry.name)) out.push(rel);
  }
  return out;
}

describe('no SQL outside src/index/', () => {
  it('finds none in src/, test/, bench/ and scripts/', () => {
    const self = path.relative(ROOT, import.meta.filename);
    const offenders: string[] = [];
    for (const file of SCANNED.flatMap(sourceFiles)) {
      if (file === self || ALLOWED.some((dir) => file.startsWith(dir))) continue;
      for (const hit of sqlIn(readFileSync(path.join(ROOT, file), 'utf8'))) offenders.push(`${file}:${hit}`);
    }
    expect(offenders).toEqual([]);
  });

  it('would notice SQL in each of its shapes', () => {
    const samples = [
      "import Database from 'better-sqlite3';",
      "const stmt = db.prepare<[string], Row>('SELECT * FROM files WHERE name = ?');",
      'db.exec(`CREATE TABLE IF NOT EXISTS x (a INTEGER)`);',
      "db.pragma('journal_mode = WAL');",
      "const sql = 'DELETE FROM files WHERE name = ?';",
      'const q = `INSERT OR REPLACE INTO usage_samples (at_ms) VALUES (?)`;',
      "run(\"UPDATE files SET accessed_ms = ?\");",
      "const ddl = 'CREATE INDEX IF NOT EXISTS files_lru ON files (class)';",
      '  SELECT name FROM files ORDER BY name',
      'CREATE TABLE IF NOT EXISTS totals (',
    ];
    for (const sample of samples) expect(sqlIn(sample).length, sample).toBeGreaterThan(0);
  });

  it('leaves regexes, prose and error messages alone', () => {
    const samples = [
      'const match = /^Bearer\\s+(\\S+)\\s*$/i.exec(header);',
      'const m = pattern.exec(`${result.stdout}${result.stderr}`);',
      "throw new HttpError('invalid_request', 'Select a file part named \"file\".');",
      '// Then we select the victims and delete from the store.',
      "const label = 'Update the index';",
      ' * SELECTs are cheap here; the CREATE of a table is not.',
    ];
    for (const sample of samples) expect(sqlIn(sample), sample).toEqual([]);
  });
});
