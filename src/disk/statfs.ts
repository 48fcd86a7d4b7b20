import fsp from 'node:fs/promises';

/** Size and free space of the filesystem holding the data dir. */
export interface DiskReading {
  totalBytes: number;
  /** bavail × bsize: what an unprivileged writer can still use. */
  freeBytes: number;
}

export type ReadDisk = () => Promise<DiskReading>;

/**
 * statfs(2) through libuv: one syscall on the threadpool, no child process.
 * (check-disk-space spawns `df` per call: see bench/statfs.ts and README.)
 */
export function statfsReader(dir: string): ReadDisk {
  return async () => {
    const st = await fsp.statfs(dir);
    return { totalBytes: st.blocks * st.bsize, freeBytes: st.bavail * st.bsize };
  };
}
