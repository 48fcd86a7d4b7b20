import { createWriteStream, existsSync } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pathOf, type StoredName } from '../names.js';
import type { Storage } from '../storage/storage.js';
import type { FilesPart } from '../index/index.js';

/** The quarantine of a data dir: outside files/, so nothing in it is served, listed or indexed. */
export function quarantineDirOf(dataDir: string): string {
  return path.join(dataDir, 'quarantine');
}

/**
 * Moves a stored file whose bytes are bad out of the store (docs/design.md
 * §10): its bytes are copied, as they are, to `<quarantine>/<name>` (a
 * `.<epoch ms>` suffix when that exists already), then the object and its
 * index row are removed, so the node answers 404 instead of wrong bytes and
 * the totals drop it. With `retiredMs` (a pub name, src/retired-names.ts)
 * the name is retired with the row's checksum, the one it was served with:
 * an upload of those original bytes restores it, other bytes are refused.
 * Works through open/remove, on every engine. Returns where the bytes went.
 */
export async function quarantineFile(storage: Storage, files: FilesPart, quarantineDir: string, name: StoredName, retiredMs: number | null = null): Promise<string> {
  const target = pathOf(quarantineDir, name);
  const dest = existsSync(target) ? `${target}.${Date.now()}` : target;
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  const partial = `${dest}.partial-${process.pid}`;
  try {
    await pipeline(await storage.open(name), createWriteStream(partial, { flags: 'wx' }));
    await fsp.rename(partial, dest);
  } catch (err) {
    await fsp.rm(partial, { force: true });
    throw err;
  }
  await storage.remove(name);
  await files.remove(name.name, retiredMs);
  return dest;
}
