import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * vitest's globalSetup: every temp dir of a run (data dirs, config files,
 * CLI working dirs; the servers, scripts and browsers the tests spawn, all
 * of which read TMPDIR) goes under one directory, removed when the run ends,
 * so `npm test` leaves nothing behind in /tmp. Tests still remove what they
 * can themselves; this is for what a failed or killed test leaves.
 */
export default function setup(): () => void {
  const root = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-test-run-'));
  // The PostgreSQL and Swift test clusters run as other users in dirs below this one.
  chmodSync(root, 0o755);
  process.env.TMPDIR = root;
  return () => {
    try {
      rmSync(root, { recursive: true, force: true });
    } catch (err) {
      // Something still mounted or held below it: say so, do not fail the run for it.
      process.stderr.write(`test run: could not remove ${root}: ${(err as Error).message}\n`);
    }
  };
}
