import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS, withNodeFlags } from '../../src/node-flags.js';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

// The flags V8 takes only on the command line (src/node-flags.ts) are written in more places than one.
describe('node flags', () => {
  it('the nanocdn binary and npm start carry every one of them', () => {
    const shebang = read('src/cli.ts').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start;
    expect(start).toContain(`node ${NODE_FLAGS.join(' ')} `);
  });

  it('withNodeFlags adds the ones missing, once', () => {
    expect(withNodeFlags([])).toEqual([...NODE_FLAGS]);
    expect(withNodeFlags(['--inspect', ...NODE_FLAGS])).toEqual(['--inspect', ...NODE_FLAGS]);
  });

  it('withNodeFlags leaves a flag given with another value as it was given', () => {
    const argv = withNodeFlags(['--initial-old-space-size=256']);
    expect(argv.filter((flag) => flag.startsWith('--initial-old-space-size'))).toEqual(['--initial-old-space-size=256']);
    expect(argv).toContain('--no-memory-reducer');
  });
});
