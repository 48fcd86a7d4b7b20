import type { StorageClass } from '../classes.js';
import type { Evictor } from './evictor.js';

/**
 * How an evictable class makes room in a tenant's quota at admission
 * (docs/design.md §7): the tenant's own least recently used files of that
 * class, never anyone else's. The ledger (src/accounting/local-ledger.ts)
 * decides when and re-reads the stored bytes afterwards; the disk reserve
 * never evicts here.
 */
export function quotaRoomMaker(evictor: Evictor): (tenant: string, cls: StorageClass, bytes: number) => Promise<void> {
  return async (tenant, cls, bytes) => {
    await evictor.run({
      reason: 'admission', exclusive: false, policies: false,
      scope: { tenant, class: cls.name }, freeBytes: bytes,
    });
  };
}
