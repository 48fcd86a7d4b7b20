import { EventEmitter } from 'node:events';
import { HttpError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DiskReading, ReadDisk } from './statfs.js';
import { formatBytes } from '../config/units.js';

export type DiskState = 'ok' | 'warning' | 'critical';

export interface DiskGuardOptions {
  readDisk: ReadDisk;
  now: () => number;
  logger: Logger;
  minFreeBytes: number;
  minFreePercent: number;
  highWatermarkPercent: number;
  lowWatermarkPercent: number;
  /** How long a statfs reading is trusted before the next admission re-reads it. */
  maxReadingAgeMs?: number;
  /** Step by which a body without Content-Length reserves as it grows. */
  growStepBytes?: number;
}

/** What the guard knows now; freeBytes is corrected by this process's writes since the reading. */
export interface DiskSnapshot {
  totalBytes: number;
  freeBytes: number;
  usedBytes: number;
  usedPercent: number;
  reserveBytes: number;
  /** Σ (reserved − written) over live uploads. */
  reservedBytes: number;
  uploads: number;
  state: DiskState;
  readAtMs: number;
}

/**
 * Admission against the disk reserve (DESIGN §4). Concurrent uploads cannot
 * overshoot together: each holds a Reservation for what it declared or has
 * written, and admission is a synchronous check against the sum.
 */
export class DiskGuard extends EventEmitter<{ state: [DiskState, DiskSnapshot] }> {
  private reading: DiskReading | undefined;
  private readAtMs = -Infinity;
  /** Bytes written minus bytes freed by this process since the reading. */
  private drift = 0;
  private outstanding = 0;
  private readonly live = new Set<Reservation>();
  private refreshing: Promise<void> | undefined;
  private state: DiskState = 'ok';
  private readonly maxAgeMs: number;
  readonly growStepBytes: number;

  constructor(private readonly options: DiskGuardOptions) {
    super();
    this.maxAgeMs = options.maxReadingAgeMs ?? 1000;
    this.growStepBytes = options.growStepBytes ?? 1 << 20;
  }

  /** Re-reads the disk (deduplicated); `force` ignores the age of the last reading. */
  async refresh(force = false): Promise<DiskSnapshot> {
    if (force || !this.reading || this.options.now() - this.readAtMs >= this.maxAgeMs) {
      this.refreshing ??= this.read().finally(() => { this.refreshing = undefined; });
      await this.refreshing;
    }
    return this.snapshot();
  }

  private async read(): Promise<void> {
    const driftBefore = this.drift;
    const reading = await this.options.readDisk();
    this.reading = reading;
    this.readAtMs = this.options.now();
    // Writes that happened while statfs ran are not in the reading yet.
    this.drift -= driftBefore;
    this.updateState();
  }

  reserveBytes(totalBytes = this.reading?.totalBytes ?? 0): number {
    return Math.max(this.options.minFreeBytes, Math.ceil((this.options.minFreePercent / 100) * totalBytes));
  }

  snapshot(): DiskSnapshot {
    const totalBytes = this.reading?.totalBytes ?? 0;
    const freeBytes = Math.max(0, Math.min(totalBytes, (this.reading?.freeBytes ?? 0) - this.drift));
    const usedBytes = totalBytes - freeBytes;
    return {
      totalBytes, freeBytes, usedBytes,
      usedPercent: totalBytes > 0 ? (100 * usedBytes) / totalBytes : 0,
      reserveBytes: this.reserveBytes(totalBytes),
      reservedBytes: this.outstanding,
      uploads: this.live.size,
      state: this.stateOf(freeBytes, usedBytes, totalBytes),
      readAtMs: this.readAtMs,
    };
  }

  get currentState(): DiskState {
    return this.state;
  }

  private stateOf(freeBytes: number, usedBytes: number, totalBytes: number): DiskState {
    if (totalBytes === 0) return 'ok';
    if (freeBytes < this.reserveBytes(totalBytes)) return 'critical';
    if ((100 * usedBytes) / totalBytes >= this.options.highWatermarkPercent) return 'warning';
    return 'ok';
  }

  private updateState(): void {
    const snap = this.snapshot();
    if (snap.state === this.state) return;
    const previous = this.state;
    this.state = snap.state;
    const log = snap.state === 'ok' ? 'info' : snap.state === 'warning' ? 'warn' : 'error';
    this.options.logger.log(log, `disk state ${previous} -> ${snap.state}`, {
      freeBytes: snap.freeBytes, usedPercent: Number(snap.usedPercent.toFixed(2)), reserveBytes: snap.reserveBytes,
    });
    this.emit('state', snap.state, snap);
  }

  /** Bytes writers may still take before touching the reserve. */
  private headroom(): number {
    const snap = this.snapshot();
    return snap.freeBytes - this.outstanding - snap.reserveBytes;
  }

  /**
   * Admits an upload of `declaredBytes` (null: unknown length, reserves one
   * step and grows). Refreshes a stale reading first. Throws 507.
   */
  async admit(declaredBytes: number | null): Promise<Reservation> {
    await this.refresh();
    const want = declaredBytes ?? this.growStepBytes;
    this.ensureRoom(want, declaredBytes);
    const reservation = new Reservation(this, want);
    this.outstanding += want;
    this.live.add(reservation);
    return reservation;
  }

  private ensureRoom(bytes: number, declaredBytes: number | null): void {
    const headroom = this.headroom();
    if (headroom - bytes >= 0) return;
    const snap = this.snapshot();
    throw new HttpError('insufficient_storage',
      `The disk is too full for this upload: ${formatBytes(snap.freeBytes)} free, ${formatBytes(snap.reserveBytes)} kept in reserve, ` +
      `${formatBytes(this.outstanding)} held by uploads in flight. Retry later, or free space (nanocdn cleanup).`,
      { freeBytes: snap.freeBytes, requiredBytes: (declaredBytes ?? bytes) + snap.reserveBytes + this.outstanding, reserveBytes: snap.reserveBytes },
      { 'Retry-After': '60' });
  }

  /** @internal Bytes written inside a reservation: they leave "free" and stop being outstanding. */
  _wrote(bytes: number): void {
    this.drift += bytes;
    this.outstanding -= bytes;
  }

  /** @internal Grows a reservation by `bytes`, or throws 507. */
  _grow(bytes: number): void {
    this.ensureRoom(bytes, null);
    this.outstanding += bytes;
  }

  /** @internal */
  _release(reservation: Reservation, freedBytes: number): void {
    this.outstanding -= reservation.reserved - reservation.written;
    this.drift -= freedBytes;
    this.live.delete(reservation);
    this.updateState();
  }

  /** Bytes freed outside an upload (deletes, eviction, tmp sweeps). */
  noteFreed(bytes: number): void {
    this.drift -= bytes;
    this.updateState();
  }
}

/** Space held by one upload; released exactly once. */
export class Reservation {
  written = 0;
  private released = false;

  constructor(private readonly guard: DiskGuard, public reserved: number) {}

  /** Counts bytes about to be written; grows the reservation in steps, or throws 507. */
  wrote(bytes: number): void {
    if (this.released) return;
    const missing = this.written + bytes - this.reserved;
    if (missing > 0) {
      const step = Math.max(this.guard.growStepBytes, missing);
      this.guard._grow(step);
      this.reserved += step;
    }
    this.written += bytes;
    this.guard._wrote(bytes);
  }

  /** Releases what is unused; `freedBytes` is what the failed upload removed from disk. */
  release(freedBytes = 0): void {
    if (this.released) return;
    this.released = true;
    this.guard._release(this, freedBytes);
  }
}
