import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import winston from 'winston';
import { descriptorsNeeded, openFilesLimit, warnOnLowFdLimit } from '../../src/http/connection-cap.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

function capture(): { logger: winston.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, next) { lines.push(JSON.parse(chunk.toString())); next(); } });
  return { logger: winston.createLogger({ level: 'info', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] }), lines };
}

describe('connection cap: descriptor limit', () => {
  it('reads the soft open files limit from /proc/self/limits text', () => {
    expect(openFilesLimit(LIMITS)).toBe(1024);
    expect(openFilesLimit(LIMITS.replace('1024   ', 'unlimited'))).toBeNull();
    expect(openFilesLimit('nothing here')).toBeNull();
  });

  it('needs a socket and a file per connection plus headroom', () => {
    expect(descriptorsNeeded(10_000)).toBe(20_256);
  });

  it('warns when the limit is below the need, and only then', async () => {
    const low = capture();
    warnOnLowFdLimit(10_000, low.logger, 1024);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(low.lines).toHaveLength(1);
    expect(low.lines[0]).toMatchObject({ level: 'warn', openFilesLimit: 1024, needed: 20_256, maxConnections: 10_000 });
    expect(String(low.lines[0].message)).toContain('LimitNOFILE=65536');

    const enough = capture();
    warnOnLowFdLimit(10_000, enough.logger, 65_536);
    warnOnLowFdLimit(10_000, enough.logger, null);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(enough.lines).toHaveLength(0);
  });
});
