import { close, constants, fstat, open, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import fsp from 'node:fs/promises';
import path from 'node:path';

/**
 * Symbolic links under the data dir are never followed (docs/design.md §6):
 * a link planted in files/ (`pub/evil -> /etc`, `pub/acme/x -> ../../priv/…`)
 * must not let a read, write or delete reach anything but the regular file
 * at exactly the name's path. Every path given here is absolute and
 * canonical (the files dir is resolved with realpath once, at start).
 */

/** The error of a path that is not a regular file reached without a link: reads answer not_found. */
function notARegularFile(file: string, why: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${why}: ${file}`), { code: 'ENOENT', path: file });
}

/** An open regular file: its descriptor (the caller closes it) and what fstat said. */
export interface OpenedFile {
  readonly fd: number;
  readonly stats: Stats;
}

/**
 * Opens `file` for reading without following any symbolic link: O_NOFOLLOW
 * refuses a link as the last component, and the path the kernel reports for
 * the open descriptor (/proc/self/fd) must be `file` itself, which it is not
 * when a parent directory was a link. Only a regular file is returned, with
 * its fstat (the read path needs size and mtime; one fstat serves both).
 * Throws an ENOENT-coded error otherwise.
 */
export async function openFdNoFollow(file: string): Promise<OpenedFile> {
  let fd: number;
  try {
    fd = await promisify(open)(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw notARegularFile(file, 'a symbolic link, not followed');
    throw err;
  }
  try {
    const stats = await promisify(fstat)(fd);
    if (!stats.isFile()) throw notARegularFile(file, 'not a regular file');
    if (await openedPath(fd, file) !== file) throw notARegularFile(file, 'reached through a symbolic link, not followed');
    return { fd, stats };
  } catch (err) {
    await promisify(close)(fd);
    throw err;
  }
}

/** Where the kernel says an open descriptor points (Linux); elsewhere the real path of its directory joined with its base name. */
async function openedPath(fd: number, file: string): Promise<string> {
  try {
    return await fsp.readlink(`/proc/self/fd/${fd}`);
  } catch {
    return path.join(await fsp.realpath(path.dirname(file)), path.basename(file));
  }
}

/**
 * Whether `dir` (a directory under `root`, both canonical) is reached without
 * a symbolic link. A missing directory counts as its nearest existing
 * ancestor (it would be created under it).
 */
export async function isLinkFree(root: string, dir: string): Promise<boolean> {
  for (let d = dir; d.length >= root.length; d = path.dirname(d)) {
    try {
      return (await fsp.realpath(d)) === d;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      // A dangling link is missing for realpath, and still a link.
      if ((await fsp.lstat(d).catch(() => null))?.isSymbolicLink()) return false;
    }
    if (d === root) break;
  }
  return true;
}
