import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LoggedRun, RunRecord } from '../../src/index/index.js';
import { openSqliteIndex, type SqliteIndex } from '../../src/index/sqlite/sqlite-index.js';
import { RunLogFollower } from '../../src/monitoring/run-log.js';

/**
 * The shared eviction run log (src/index/sqlite/runs.ts) and the node's
 * reader of it (src/monitoring/run-log.ts): each run recorded by any
 * process on the index is handed over once, in order.
 */
const run = (atMs: number, files: number, error: string | null = null): RunRecord =>
  ({ atMs, reason: 'cli', files, bytes: files * 10, durationMs: 1, error, byReason: files ? { 'max-age': { files, bytes: files * 10 } } : {} });

describe('eviction run log', () => {
  let dir: string;
  let index: SqliteIndex;
  let other: SqliteIndex;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-runlog-'));
    index = openSqliteIndex(path.join(dir, 'index.sqlite'));
    // A second handle on the same file: another process, as `nanocdn cleanup` is.
    other = openSqliteIndex(path.join(dir, 'index.sqlite'));
  });
  afterEach(async () => {
    await index.close();
    await other.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('last() by filter: any run, the last that removed files, the last that succeeded', async () => {
    expect(await index.runs.last()).toBeNull();
    await other.runs.record(run(1000, 3));
    await other.runs.record(run(2000, 0));
    await other.runs.record(run(3000, 0, 'EACCES'));
    expect((await index.runs.last())?.atMs).toBe(3000);
    expect((await index.runs.last('removed'))?.atMs).toBe(1000);
    expect((await index.runs.last('succeeded'))?.atMs).toBe(2000);
  });

  it('the follower hands over each run recorded after start() once, whoever recorded it, however often it catches up', async () => {
    await other.runs.record(run(500, 9));
    const seen: LoggedRun[] = [];
    const follower = new RunLogFollower(index.runs, (r) => seen.push(r));
    await follower.start();
    await other.runs.record(run(1000, 2));
    await index.runs.record(run(2000, 1));
    await Promise.all([follower.catchUp(), follower.catchUp(), follower.catchUp()]);
    await follower.catchUp();
    expect(seen.map((r) => [r.atMs, r.files, r.byReason])).toEqual([
      [1000, 2, { 'max-age': { files: 2, bytes: 20 } }], [2000, 1, { 'max-age': { files: 1, bytes: 10 } }],
    ]);
  });

  it('keeps the last 100 runs, and every run of the last 10 minutes, so a follower reading every 10 s misses none', async () => {
    const seen: LoggedRun[] = [];
    const follower = new RunLogFollower(index.runs, (r) => seen.push(r));
    await follower.start();
    const now = 100 * 60_000;
    for (let i = 0; i < 300; i++) await other.runs.record(run(now + i, 1));
    expect(await index.runs.recent(1000)).toHaveLength(300);
    await follower.catchUp();
    expect(seen).toHaveLength(300);
    // Over ten minutes later, only the last 100 are kept.
    await other.runs.record(run(now + 11 * 60_000, 1));
    expect(await index.runs.recent(1000)).toHaveLength(100);
    await follower.catchUp();
    expect(seen).toHaveLength(301);
  });
});
