import type { ReadDisk } from './statfs.js';

/** Where the bytes of a store without a filesystem of its own are counted. */
export interface CapacitySources {
  /** What the node may use of the store (storage.s3.capacityBytes). */
  capacityBytes: number;
  /** Bytes of stored files (the index totals: no listing of the store). */
  committedBytes: () => Promise<number>;
  /** Bytes that uploads in flight have sent so far (on a shared index: what every node's uploads hold, docs/design.md §15). */
  inflightBytes: () => number | Promise<number>;
}

/**
 * The disk guard's reading for a store measured by a configured capacity
 * (the s3 engine): total = capacity, free = capacity − committed − in flight.
 */
export function capacityReader(sources: CapacitySources): ReadDisk {
  return async () => {
    const used = (await sources.committedBytes()) + (await sources.inflightBytes());
    return { totalBytes: sources.capacityBytes, freeBytes: Math.max(0, sources.capacityBytes - used) };
  };
}
