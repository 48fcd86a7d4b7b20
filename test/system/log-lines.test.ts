import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/spawn-server.js';

const LOGGER = pathToFileURL(path.join(REPO_ROOT, 'dist', 'src', 'logger.js')).href;

/** Runs `body` in a fresh node process with `createLogger`/`lineWriter` of the built node in scope; returns its stdout lines. */
function run(body: string): string[] {
  const script = `import { createLogger, lineWriter } from ${JSON.stringify(LOGGER)};\n${body}`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line !== '');
}

describe('log lines on stdout (src/logger.ts)', () => {
  it('winston lines and lineWriter lines come out whole, in order, with the same fields', () => {
    const lines = run(`
      const logger = createLogger('info');
      const http = lineWriter(logger, { module: 'http' });
      for (let i = 0; i < 500; i++) {
        logger.child({ module: 'x' }).info('winston', { i });
        http('info', 'request', { i, status: 200, skipped: undefined });
      }
      logger.debug('below the level');`);
    expect(lines).toHaveLength(1000);
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    parsed.forEach((entry, k) => {
      expect(entry.i).toBe(Math.floor(k / 2));
      expect(entry.message).toBe(k % 2 === 0 ? 'winston' : 'request');
      expect(entry.level).toBe('info');
      expect(typeof entry.timestamp).toBe('string');
      expect(Number.isNaN(Date.parse(entry.timestamp as string))).toBe(false);
    });
    expect(parsed[1]).toEqual({ level: 'info', message: 'request', module: 'http', i: 0, status: 200, timestamp: parsed[1].timestamp });
  });

  it('lines still pending when the process exits are written (process.exit in the same turn)', () => {
    const lines = run(`
      const logger = createLogger('info');
      const http = lineWriter(logger, { module: 'http' });
      logger.info('first');
      http('warn', 'second', {});
      process.exit(0);`);
    expect(lines.map((line) => (JSON.parse(line) as { message: string }).message)).toEqual(['first', 'second']);
  });

  it('a silent logger writes nothing through lineWriter either', () => {
    expect(run(`
      const logger = createLogger('info', { silent: true });
      lineWriter(logger, { module: 'http' })('info', 'request', {});
      logger.info('nothing');`)).toEqual([]);
  });
});
