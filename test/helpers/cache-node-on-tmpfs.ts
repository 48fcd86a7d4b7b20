import { statfsSync } from 'node:fs';
import { spawnServer, type SpawnedServer } from './spawn-server.js';
import { mountTmpfs, type Tmpfs } from './system-tools.js';

/** A spawned node on its own tmpfs, for the low-disk tests: only `cachedtickets/` is evictable. */
export interface CacheNodeOnTmpfs {
  readonly tmpfs: Tmpfs;
  readonly server: SpawnedServer;
  /** The tmpfs's used space as statfs sees it (blocks − bavail), in percent. */
  usedPercent(): number;
  /** Stops the node, then unmounts. */
  close(): Promise<void>;
}

/**
 * Mounts a tmpfs of `sizeMiB` and spawns the built node on it with a 1 MiB
 * reserve, the given watermarks, and one evictable class (`cache`: files
 * under `<tenant>/cachedtickets/`, no age or idle limit) next to the
 * non-evictable default. `config` is merged over that (top-level keys).
 */
export async function cacheNodeOnTmpfs(sizeMiB: number, marks: { high: number; low: number }, config: Record<string, unknown> = {}): Promise<CacheNodeOnTmpfs> {
  const tmpfs = mountTmpfs(sizeMiB);
  let server: SpawnedServer;
  try {
    server = await spawnServer({
      dataDir: tmpfs.dir,
      config: {
        durability: 'none',
        disk: { minFreeBytes: '1MiB', minFreePercent: 0, highWatermarkPercent: marks.high, lowWatermarkPercent: marks.low },
        classes: {
          cache: { match: ['*/*/cachedtickets/**'], evictable: true, maxAge: null, maxIdle: null, maxBytesPerTenant: null },
          default: { evictable: false, maxBytesPerTenant: null },
        },
        ...config,
      },
    });
  } catch (err) {
    tmpfs.unmount();
    throw err;
  }
  return {
    tmpfs,
    server,
    usedPercent() {
      const st = statfsSync(tmpfs.dir);
      return (100 * (st.blocks - st.bavail)) / st.blocks;
    },
    async close() {
      await server.stop();
      tmpfs.unmount();
    },
  };
}
