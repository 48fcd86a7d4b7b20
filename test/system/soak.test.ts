import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/spawn-server.js';
import { canMountTmpfs, requirement } from '../helpers/system-tools.js';

/** The 1-minute soak of CI (issue 13): `npm run soak -- --minutes 1` must pass (no growing RSS, fds, loop delay, tmp). */
const canRun = requirement('mounting a tmpfs (root)', canMountTmpfs(), 'run as root where mount -t tmpfs is permitted');

describe.runIf(canRun)('soak (1 minute, built node on a tmpfs that fills and drains)', () => {
  it('holds: no 5xx, tmp empty after, no figure keeps growing', () => {
    const run = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist', 'bench', 'soak.js'), '--minutes', '1', '--json'], { encoding: 'utf8', timeout: 240_000 });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    const report = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
      ok: boolean; samples: number; tmpAfter: number; disk: string;
      counters: { uploads: number; reads: number; deletes: number; fills: number; aborted: number; serverErrors: number };
    };
    expect(report.ok).toBe(true);
    expect(report.disk).toMatch(/tmpfs/);
    expect(report.samples).toBeGreaterThanOrEqual(20);
    expect(report.tmpAfter).toBe(0);
    expect(report.counters.serverErrors).toBe(0);
    for (const key of ['uploads', 'reads', 'deletes', 'fills', 'aborted'] as const) expect(report.counters[key], key).toBeGreaterThan(0);
  }, 300_000);
});
