/** ok: below the high watermark; warning: above it (eviction runs); critical: inside the reserve (/readyz fails). */
export type DiskState = 'ok' | 'warning' | 'critical';

export interface DiskFigures {
  freeBytes: number;
  usedPercent: number;
  reserveBytes: number;
}

export interface Watermarks {
  highWatermarkPercent: number;
  lowWatermarkPercent: number;
}

/**
 * The disk state after `previous`, as a pure function. critical means free
 * space is inside the reserve. warning starts at the high watermark and,
 * once entered (or when leaving critical), lasts until usage falls below
 * the low watermark — the level eviction works down to — so a disk hovering
 * at the high mark does not flap.
 */
export function diskStateOf(previous: DiskState, disk: DiskFigures, marks: Watermarks): DiskState {
  if (disk.freeBytes < disk.reserveBytes) return 'critical';
  if (disk.usedPercent >= marks.highWatermarkPercent) return 'warning';
  if (previous !== 'ok' && disk.usedPercent >= marks.lowWatermarkPercent) return 'warning';
  return 'ok';
}
