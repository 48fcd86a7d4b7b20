import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const IN_CI = process.env.CI === 'true';

/** True when `tool` is on PATH. */
export function hasTool(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Whether a test group that needs something (root, a tool) can run. In CI it
 * must: a missing requirement throws, so the run goes red. Elsewhere it
 * skips with a loud message.
 */
export function requirement(what: string, available: boolean, howTo: string): boolean {
  if (available) return true;
  const message = `\n*** SKIPPED: ${what} is not available (${howTo}). CI runs these tests. ***\n`;
  if (IN_CI) throw new Error(`CI=true but ${what} is not available: ${howTo}`);
  console.warn(message);
  return false;
}

/** Can this process mount a tmpfs (root, mount permitted)? Probes once. */
export function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Tmpfs {
  readonly dir: string;
  unmount(): void;
}

/** Mounts a tmpfs of `sizeMiB` on a new temp dir (root only). */
export function mountTmpfs(sizeMiB: number): Tmpfs {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir]);
  let mounted = true;
  return {
    dir,
    unmount() {
      if (!mounted) return;
      spawnSync('umount', ['-l', dir], { stdio: 'ignore' });
      mounted = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
