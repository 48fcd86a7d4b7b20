import { EventEmitter } from 'node:events';
import { HttpError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DiskReading, ReadDisk } from './statfs.js';
import { formatBytes } from '../config/units.js';
import { diskStateOf, type DiskState } from './disk-state.js';

export type { DiskState } from './disk-state.js';

export interface DiskGuardOptions {
  readDisk: ReadDisk;
  now: () => number;
  logger: Logger;
  minFreeBytes: number;
  minFreePercent: number;
  highWatermarkPercent: number;
  lowWatermarkPercent: number;
  /** Where the disk is (the data dir), for the sentence of a refusal. */
  path?: string;
  /** How long a statfs reading is trusted before the next admission re-reads it. */
  maxReadingAgeMs?: number;
  /** Step by which a body without Content-Length reserves as it grows. */
  growStepBytes?: number;
  /**
   * Upper bound of the bytes an upload has counted (UploadMeter) but the
   * engine may not have handed to the filesystem yet: the meter's two
   * buffers + the tmp file's batch (filled or being written) and writable
   * buffer + a socket chunk or two (src/storage/tmp-file.ts: 2 × 16 KiB +
   * 128 KiB + 16 KiB + 2 × 64 KiB ≈ 300 KiB). A reading is trusted to contain an
   * upload's bytes only up to this margin. Default UNFLUSHED_BYTES_PER_UPLOAD.
   */
  unflushedBytesPerUpload?: number;
  /** Retry-After of a refusal, in seconds. */
  retryAfterSeconds?: number;
  /** Told when this process freed space (a clustered worker tells the primary, whose guard decides). */
  onFreed?: () => void;
}

/** See DiskGuardOptions.unflushedBytesPerUpload (a test keeps it above the upload buffers). */
export const UNFLUSHED_BYTES_PER_UPLOAD = 512 << 10;

/** What the guard knows now. */
export interface DiskSnapshot {
  totalBytes: number;
  /** Best estimate: the reading corrected by this process's writes since. */
  freeBytes: number;
  usedBytes: number;
  usedPercent: number;
  reserveBytes: number;
  /**
   * Held by live uploads beyond what freeBytes already counts as used: what
   * they declared but have not written, plus a margin for bytes the reading
   * may not contain yet. Admission: free − reservedBytes − incoming ≥ reserve.
   */
  reservedBytes: number;
  uploads: number;
  state: DiskState;
  readAtMs: number;
}

/**
 * Admission against the disk reserve (docs/design.md §6). Concurrent uploads cannot
 * overshoot together: each holds a Reservation for what it declared (or
 * grew to), and admission is a synchronous check against the sum taken
 * right after the (cached) reading, so no await separates check and hold.
 *
 * Accounting, so that our estimate of free space never exceeds the truth
 * because of our own writes:
 * - a live upload counts `reserved − settled` against the reading, where
 *   `settled` is what a reading is sure to contain (written at the start of
 *   that statfs, less the unflushed margin);
 * - a finished upload keeps counting its unsettled bytes until a reading
 *   that started after it finished;
 * - frees (deletes, sweeps, failed uploads) are not added arithmetically
 *   (we cannot tell whether a reading already saw them): they mark the
 *   reading stale, so the next admission reads statfs again.
 */
export class DiskGuard extends EventEmitter<{ state: [DiskState, DiskSnapshot] }> {
  private reading: DiskReading | undefined;
  private readAtMs = -Infinity;
  /** Counts statfs calls started; finished uploads are tagged with it. */
  private readSeq = 0;
  private freesNoted = 0;
  private freesSeen = 0;
  private refreshing: Promise<void> | undefined;
  private readFailing = false;
  private state: DiskState = 'ok';
  private readonly live = new Set<Reservation>();
  /** Finished uploads whose bytes no reading is sure to contain yet. */
  private pending: { bytes: number; seq: number }[] = [];
  private pendingBytes = 0;
  // Sums over live reservations (kept incrementally: admission is O(1)).
  private reservedSum = 0;
  private writtenSum = 0;
  private seenSum = 0;
  private settledSum = 0;
  private readonly maxAgeMs: number;
  private readonly unflushed: number;
  readonly growStepBytes: number;

  constructor(private readonly options: DiskGuardOptions) {
    super();
    this.maxAgeMs = options.maxReadingAgeMs ?? 1000;
    this.growStepBytes = options.growStepBytes ?? 1 << 20;
    this.unflushed = options.unflushedBytesPerUpload ?? UNFLUSHED_BYTES_PER_UPLOAD;
  }

  /** Re-reads the disk when the reading is older than maxReadingAgeMs or stale (deduplicated); `force` always does. */
  async refresh(force = false): Promise<DiskSnapshot> {
    const stale = !this.reading || this.freesNoted !== this.freesSeen || this.options.now() - this.readAtMs >= this.maxAgeMs;
    if (force || stale) {
      this.refreshing ??= this.read().finally(() => { this.refreshing = undefined; });
      await this.refreshing;
    }
    return this.snapshot();
  }

  private async read(): Promise<void> {
    const seq = ++this.readSeq;
    const frees = this.freesNoted;
    const written = new Map<Reservation, number>();
    for (const r of this.live) written.set(r, r.written);
    let reading: DiskReading;
    try {
      reading = await this.options.readDisk();
    } catch (err) {
      this.readFailed(err);
      return;
    }
    if (this.readFailing) this.options.logger.info('disk reading works again');
    this.readFailing = false;
    this.reading = reading;
    this.readAtMs = this.options.now();
    this.freesSeen = frees;
    // Uploads that finished before this statfs started are in it.
    this.pending = this.pending.filter((p) => p.seq >= seq);
    this.pendingBytes = this.pending.reduce((sum, p) => sum + p.bytes, 0);
    for (const [r, before] of written) {
      if (!this.live.has(r)) continue;
      this.seenSum += before - r.seen;
      r.seen = before;
      const settled = Math.max(r.settled, before - this.unflushed);
      this.settledSum += settled - r.settled;
      r.settled = settled;
    }
    this.snapshot();
  }

  /** A failed statfs keeps the last reading (stale but real) and logs once; with none, uploads get 503. */
  private readFailed(err: unknown): void {
    if (!this.readFailing) this.options.logger.error('cannot read free disk space', { error: (err as Error).message, path: this.options.path });
    this.readFailing = true;
    if (!this.reading) throw new HttpError('store_unavailable', 'The node cannot read the free space of its data dir; retry later.');
    this.readAtMs = this.options.now();
  }

  reserveBytes(totalBytes = this.reading?.totalBytes ?? 0): number {
    return Math.max(this.options.minFreeBytes, Math.ceil((this.options.minFreePercent / 100) * totalBytes));
  }

  /** Room left above the reserve for new bytes (negative: inside the reserve). */
  /** Where the guard reads (the data dir, absolute; or the bucket of the s3 engine). */
  get path(): string | undefined {
    return this.options.path;
  }

  /** What one more upload may use now: free space minus what uploads in flight hold, minus the reserve (0 at least). */
  headroomBytes(): number {
    return Math.max(0, this.headroom());
  }

  private headroom(): number {
    const free = this.reading?.freeBytes ?? 0;
    return free - this.pendingBytes - (this.reservedSum - this.settledSum) - this.reserveBytes();
  }

  /** The current figures; also moves the state (logged and emitted once per change). */
  snapshot(): DiskSnapshot {
    const totalBytes = this.reading?.totalBytes ?? 0;
    const raw = (this.reading?.freeBytes ?? 0) - this.pendingBytes - (this.writtenSum - this.seenSum);
    const freeBytes = Math.max(0, Math.min(totalBytes, raw));
    const usedBytes = totalBytes - freeBytes;
    const usedPercent = totalBytes > 0 ? (100 * usedBytes) / totalBytes : 0;
    const reserveBytes = this.reserveBytes(totalBytes);
    const snap: DiskSnapshot = {
      totalBytes, freeBytes, usedBytes, usedPercent, reserveBytes,
      reservedBytes: (this.reservedSum - this.writtenSum) + (this.seenSum - this.settledSum),
      uploads: this.live.size,
      state: this.state,
      readAtMs: this.readAtMs,
    };
    if (totalBytes > 0) this.moveState(snap);
    return snap;
  }

  get currentState(): DiskState {
    return this.state;
  }

  private moveState(snap: DiskSnapshot): void {
    const next = diskStateOf(this.state, snap, this.options);
    if (next === this.state) return;
    const previous = this.state;
    this.state = next;
    snap.state = next;
    const level = next === 'ok' ? 'info' : next === 'warning' ? 'warn' : 'error';
    this.options.logger.log(level, `disk state ${previous} -> ${next}`, {
      path: this.options.path, freeBytes: snap.freeBytes, usedPercent: Number(snap.usedPercent.toFixed(2)), reserveBytes: snap.reserveBytes,
    });
    this.emit('state', next, snap);
  }

  /**
   * Admits an upload of `declaredBytes` (null: unknown length, reserves one
   * step and grows). Refreshes a stale reading first. Throws 507.
   */
  async admit(declaredBytes: number | null): Promise<Reservation> {
    await this.refresh();
    return this.reserveNow(declaredBytes);
  }

  /**
   * admit() on the reading at hand, without an await: a caller that checks
   * more than the disk (src/accounting/local-ledger.ts) refreshes first and
   * then decides everything in one synchronous step. Throws 507.
   */
  reserveNow(declaredBytes: number | null): Reservation {
    const want = declaredBytes ?? this.growStepBytes;
    this.ensureRoom(want, 'upload');
    const reservation = new Reservation(this, want);
    this.live.add(reservation);
    this.reservedSum += want;
    return reservation;
  }

  /** Free space above the reserve, not counting what uploads in flight hold (what a share of the headroom is a share of). */
  roomAboveReserveBytes(): number {
    return Math.max(0, this.headroom() + (this.reservedSum - this.settledSum));
  }

  private ensureRoom(bytes: number, what: 'upload' | 'growth'): void {
    if (this.headroom() - bytes >= 0) return;
    const snap = this.snapshot();
    const requiredBytes = bytes + snap.reserveBytes + snap.reservedBytes;
    const where = this.options.path ? ` on ${this.options.path}` : '';
    const start = what === 'upload' ? 'Not enough disk space for this upload' : 'This upload grew past the room left above the disk reserve, so it was cut off and nothing was stored';
    throw new HttpError('insufficient_storage',
      `${start}: ${formatBytes(snap.freeBytes)} free, ${formatBytes(snap.reserveBytes)} kept in reserve, ` +
      `${formatBytes(snap.reservedBytes)} held by uploads in flight, ${formatBytes(bytes)} more needed. ` +
      `Retry after Retry-After seconds, or free space${where}: delete files or run \`nanocdn cleanup\`.`,
      { freeBytes: snap.freeBytes, requiredBytes, reserveBytes: snap.reserveBytes },
      { 'Retry-After': String(this.options.retryAfterSeconds ?? 60) });
  }

  /** @internal Grows a live reservation by `bytes` (or shrinks it, `bytes` < 0), or throws 507. */
  _grow(reservation: Reservation, bytes: number): void {
    if (bytes > 0) this.ensureRoom(bytes, 'growth');
    reservation.reserved += bytes;
    this.reservedSum += bytes;
  }

  /** @internal */
  _wrote(bytes: number): void {
    this.writtenSum += bytes;
  }

  /** @internal `kept`: the bytes stay on disk (stored); otherwise they were never written or were removed. */
  _finish(reservation: Reservation, kept: boolean): void {
    if (!this.live.delete(reservation)) return;
    this.reservedSum -= reservation.reserved;
    this.writtenSum -= reservation.written;
    this.seenSum -= reservation.seen;
    this.settledSum -= reservation.settled;
    if (kept) {
      const bytes = reservation.written - reservation.settled;
      if (bytes > 0) {
        this.pending.push({ bytes, seq: this.readSeq });
        this.pendingBytes += bytes;
      }
    } else if (reservation.written > 0) {
      this.noteFreed();
    }
    this.snapshot();
  }

  /** Space was freed outside an upload (delete, eviction, tmp sweep): the next admission reads statfs again. */
  noteFreed(): void {
    this.freesNoted++;
    this.options.onFreed?.();
  }
}

/** Space held by one upload; finished exactly once, by commit() or release(). */
export class Reservation {
  /** Bytes counted by the upload so far (never more than reserved). */
  written = 0;
  /** @internal written at the start of the last reading */
  seen = 0;
  /** @internal bytes the last reading surely contains */
  settled = 0;
  private finished = false;

  constructor(private readonly guard: DiskGuard, public reserved: number) {}

  /** Counts bytes about to be written; grows the reservation in steps, or throws 507. */
  wrote(bytes: number): void {
    if (this.finished) throw new Error('bytes written after the reservation was finished');
    const missing = this.written + bytes - this.reserved;
    if (missing > 0) this.guard._grow(this, Math.max(this.guard.growStepBytes, missing));
    this.written += bytes;
    this.guard._wrote(bytes);
  }

  /** Holds `bytes` instead of more (a spare hold taken by an upload that declared fewer); never below what was written. */
  shrinkTo(bytes: number): void {
    if (this.finished || bytes >= this.reserved) return;
    this.guard._grow(this, Math.max(bytes, this.written) - this.reserved);
  }

  /** The upload is stored: its bytes stay used until a reading contains them. */
  commit(): void {
    if (this.finished) return;
    this.finished = true;
    this.guard._finish(this, true);
  }

  /** The upload failed, was aborted or refused: what it held is free again. No-op once finished. */
  release(): void {
    if (this.finished) return;
    this.finished = true;
    this.guard._finish(this, false);
  }
}
