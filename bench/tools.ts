import { spawnSync } from 'node:child_process';

/**
 * The external tools the bench needs. Nothing is installed silently: when one
 * is missing, run.ts says how to get it and exits 1.
 */
export interface Tools {
  /** e.g. "1.22.1"; null when `nginx` is not on PATH. */
  nginx: string | null;
  /** e.g. "4.1.0"; null when `wrk` is not on PATH. */
  wrk: string | null;
}

let detected: Tools | undefined;

export function detectTools(): Tools {
  detected ??= {
    // nginx -v prints "nginx version: nginx/1.22.1" on stderr.
    nginx: version('nginx', ['-v'], /nginx\/(\d+\.\d+\.\d+)/),
    // wrk -v prints "wrk 4.1.0 [epoll] ..." (Debian: "wrk debian/4.1.0-3") and exits 1.
    wrk: version('wrk', ['-v'], /wrk (?:\S*?\/)?(\d+\.\d+\.\d+)/),
  };
  return detected;
}

export function missingToolsMessage(tools: Tools): string | null {
  const missing = (['nginx', 'wrk'] as const).filter((tool) => tools[tool] === null);
  if (missing.length === 0) return null;
  return [
    `bench: ${missing.join(' and ')} not found on PATH; the bench installs nothing by itself.`,
    'Install them, then run `npm run bench` again:',
    '  Debian/Ubuntu:  sudo apt-get install -y nginx-light wrk',
    '  Fedora:         sudo dnf install -y nginx wrk',
    '  macOS:          brew install nginx wrk',
    'The bench starts its own nginx on 127.0.0.1 with a config in a temp dir;',
    'it never uses or touches a system nginx service (you may keep it disabled).',
  ].join('\n');
}

/** True when nginx accepts -e (error log before the config is read): 1.19.5 and later. */
export function nginxHasErrorLogFlag(): boolean {
  const [major, minor, patch] = (detectTools().nginx ?? '0.0.0').split('.').map(Number);
  return major * 1_000_000 + minor * 1_000 + patch >= 1_019_005;
}

/** The commit checked out in the repository that holds `dir` (results name what they measured), or null. */
export function gitCommit(dir: string): string | null {
  const result = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : null;
}

function version(command: string, args: string[], pattern: RegExp): string | null {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 5000 });
  if (result.error) return null;
  const match = pattern.exec(`${result.stdout}${result.stderr}`);
  return match ? match[1] : 'unknown';
}
