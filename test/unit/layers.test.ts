import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SRC = path.join(ROOT, 'src');

/** Every .ts file under src/, as a path relative to the repository ("src/http/app.ts"). */
function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [path.relative(ROOT, full)] : [];
  });
}

// `import … from '…'`, `export … from '…'`, `import '…'` and `import('…')`, type-only ones included.
const SPECIFIER = /^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s)?\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;

/** The files of src/ that `file` imports (relative specifiers only; packages are not files of ours). */
function importsOf(file: string, text = readFileSync(path.join(ROOT, file), 'utf8')): string[] {
  const out = new Set<string>();
  for (const match of text.matchAll(SPECIFIER)) {
    const specifier = match[1] ?? match[2];
    if (!specifier.startsWith('.')) continue;
    out.add(path.join(path.dirname(file), specifier).replace(/\.js$/, '.ts'));
  }
  return [...out];
}

function importGraph(): Map<string, string[]> {
  return new Map(sourceFiles().map((file) => [file, importsOf(file)]));
}

/** Each import cycle once, as the list of files around it (Tarjan's strongly connected components). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, next);
    low.set(file, next);
    next++;
    stack.push(file);
    onStack.add(file);
    for (const dep of graph.get(file) ?? []) {
      if (!index.has(dep)) {
        visit(dep);
        low.set(file, Math.min(low.get(file)!, low.get(dep)!));
      } else if (onStack.has(dep)) {
        low.set(file, Math.min(low.get(file)!, index.get(dep)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    const selfImport = graph.get(file)?.includes(file) ?? false;
    if (component.length > 1 || selfImport) found.push(component.sort());
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return found;
}

/** The lower layers and what they must never import (docs/design.md §13). */
const LOWER = ['src/storage/', 'src/index/', 'src/disk/'];
const UPPER = ['src/upload/', 'src/eviction/', 'src/monitoring/', 'src/http/'];

describe('layers of src/', () => {
  const graph = importGraph();

  it('reads the imports the way the compiler does (the checker checks itself)', () => {
    const text = [
      "import { a } from '../upload/uploader.js';",
      "import type { B } from '../eviction/report.js';",
      "export { c } from './c.js';",
      "export * from '../http/app.js';",
      "import './side-effect.js';",
      "import {\n  d,\n  e,\n} from '../monitoring/metrics.js';",
      "const lazy = await import('../names.js');",
      "import express from 'express';",
      "// import { x } from '../not/real.js' -- a comment on its own line is not an import",
    ].join('\n');
    expect(importsOf('src/storage/x.ts', text).sort()).toEqual([
      'src/eviction/report.ts', 'src/http/app.ts', 'src/monitoring/metrics.ts', 'src/names.ts',
      'src/storage/c.ts', 'src/storage/side-effect.ts', 'src/upload/uploader.ts',
    ]);
    // Every import resolves to a file of src/, so nothing is missed by a wrong path.
    const files = new Set(graph.keys());
    const dangling = [...graph].flatMap(([file, deps]) => deps.filter((dep) => !files.has(dep)).map((dep) => `${file} -> ${dep}`));
    expect(dangling).toEqual([]);
    expect(graph.size).toBeGreaterThan(40);
  });

  it('storage, index and disk import nothing from upload, eviction, monitoring or http', () => {
    const upward = [...graph]
      .filter(([file]) => LOWER.some((dir) => file.startsWith(dir)))
      .flatMap(([file, deps]) => deps.filter((dep) => UPPER.some((dir) => dep.startsWith(dir))).map((dep) => `${file} -> ${dep}`));
    expect(upward).toEqual([]);
  });

  it('has no import cycle between files', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('the cycle finder finds a cycle when there is one', () => {
    const graph = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['d']], ['e', ['a']]]);
    expect(cycles(graph)).toEqual([['a', 'b', 'c'], ['d']]);
  });
});
