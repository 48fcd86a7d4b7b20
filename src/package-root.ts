import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's root (where package.json is), found from src/ (tests) and dist/src/ (built). */
export const PACKAGE_ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'config', 'default.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('package.json and config/default.json not found above this module');
    dir = parent;
  }
})();

/** package.json's version, e.g. "0.1.0". */
export const VERSION = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
