import { HttpError, isHttpError } from '../errors.js';
import { formatBytes } from '../config/units.js';
import type { StorageClass } from '../classes.js';
import type { DiskGuard, Reservation } from '../disk/disk-guard.js';
import { classTenantKey, type DecidingLedger, type DiskSpareHold, type HoldRequest, type LedgerObserver, type SpareHold, type TenantInflight } from './ledger.js';
import { inflightBytesLimit, rateLimited, TenantRates, type TenantLimits } from './tenant-rates.js';

export interface LocalLedgerDeps {
  guard: DiskGuard;
  /** Bytes a tenant stores in a class now (the index). */
  storedBytes(tenant: string, cls: string): Promise<number>;
  /** Evicts at least `bytes` of the tenant's own least recently used files of an evictable class (best effort). */
  makeRoom(tenant: string, cls: StorageClass, bytes: number): Promise<void>;
  limits: () => TenantLimits;
  now: () => number;
  observer?: LedgerObserver;
}

/** What the ledger knows of one (tenant, class) with a quota. */
interface QuotaState {
  /** Bytes held by live uploads. */
  held: number;
  holds: number;
  /** Admissions between their first reading and their decision. */
  admitting: number;
  /** The last index reading of the stored bytes, and the sequence number at its start. */
  lastStored: number;
  lastReadSeq: number;
  /** Uploads committed after some reading started: that reading may not contain them. */
  commits: { bytes: number; seq: number }[];
  /** Readings in progress (their start sequence numbers). */
  reading: Set<number>;
}

interface TenantState {
  uploads: number;
  /** Disk bytes held (reservations). */
  bytes: number;
  byClass: Map<string, number>;
  /** The part of the above that spare holds (not yet any upload's) hold. */
  spare: { uploads: number; bytes: number; byClass: Map<string, number> };
}

/** How an admission goes: whether it counted its upload yet, tells refusals, is for a spare. */
interface Attempt {
  counted: boolean;
  /** Refusals are not told to the observer: spares may be recalled and the admission retried. */
  quiet: boolean;
  /** A spare hold (trySpare): no eviction, room for twice its size or none at all. */
  spare: boolean;
  /** A disk spare the upload takes over: its room is the upload's disk reservation. */
  disk?: LocalDiskSpare;
}

/** Thrown inside an admission of a spare that is not far enough from every limit. */
const NO_SPARE = new Error('no room for a spare hold');


/**
 * The ledger of one process (docs/design.md §7): quotas, limits and the disk
 * reserve decided in one synchronous step after the only awaits (the index
 * reading of a tenant's stored bytes, eviction, the statfs refresh), so
 * concurrent admissions in this process cannot overshoot together.
 *
 * A tenant's use of a class is the last index reading + uploads committed
 * since that reading started + holds of live uploads. A commit is counted
 * twice rather than not at all (it may already be in a reading that started
 * before it); the state of a (tenant, class) is dropped when nothing is held
 * and nothing is being read, so the next admission reads the index afresh.
 */
export class LocalLedger implements DecidingLedger {
  private seq = 0;
  /** Spare holds granted and not taken by an upload yet, and the disk bytes they hold. */
  private sparesOut = 0;
  private spareReserved = 0;
  private recall: ((tenant?: string) => Promise<number>) | undefined;
  private readonly quotas = new Map<string, QuotaState>();
  private readonly tenants = new Map<string, TenantState>();
  private readonly rates: TenantRates;

  constructor(private readonly deps: LocalLedgerDeps) {
    this.rates = new TenantRates(deps);
  }

  get growStepBytes(): number {
    return this.deps.guard.growStepBytes;
  }

  /**
   * A refusal may be caused by spare holds (docs/design.md §14): with some
   * out, the first attempt is quiet, a refusal recalls them — the
   * tenant's for a refusal of the tenant's own (a limit, its quota), all
   * for the disk — and the admission is decided again: no upload is
   * refused for room a spare holds.
   */
  async admit(request: HoldRequest, disk?: DiskSpareHold): Promise<LocalHold> {
    // A disk spare is this upload's from now on (not one to recall); one too small for it, or of another ledger, is given back.
    const fits = disk instanceof LocalDiskSpare && request.declaredBytes !== null && request.declaredBytes <= disk.allowance;
    if (disk && !fits) disk.release();
    if (fits) disk.claim();
    try {
      return await this.admitSpending(request, fits ? disk : undefined);
    } catch (err) {
      // Refused: the room the disk spare held is free again (a no-op once the hold took it over).
      if (fits) disk.release();
      throw err;
    }
  }

  private async admitSpending(request: HoldRequest, disk: LocalDiskSpare | undefined): Promise<LocalHold> {
    const attempt: Attempt = { counted: false, quiet: this.sparesOut > 0 && this.recall !== undefined, spare: false, disk };
    if (attempt.quiet) {
      try {
        return await this.admitOnce(request, attempt);
      } catch (err) {
        if (!isHttpError(err)) throw err;
        if (err.code === 'insufficient_storage') await this.recall!();
        else if (this.tenants.get(request.tenant)?.spare.uploads) await this.recall!(request.tenant);
        attempt.quiet = false;
      }
    }
    return this.admitOnce(request, attempt);
  }

  /** Who gives spare holds back when an admission would be refused (the clustered node's primary: its workers'; one tenant's, or all). */
  recallSparesWith(recall: (tenant?: string) => Promise<number>): void {
    this.recall = recall;
  }

  /**
   * A spare hold of `declaredBytes` for (tenant, class), admitted ahead of
   * an upload a worker expects, or null: only when twice as much would fit
   * every limit, the quota and the disk, so spares never take the last room
   * (and a refusal recalls them anyway). Never evicts, never refuses.
   */
  async trySpare(request: HoldRequest & { declaredBytes: number }): Promise<LocalHold | null> {
    try {
      return await this.admitOnce(request, { counted: true, quiet: true, spare: true });
    } catch (err) {
      if (err === NO_SPARE || isHttpError(err)) return null;
      throw err;
    }
  }

  /**
   * A disk spare of `bytes` (docs/design.md §14): room above the reserve held
   * ahead for the next upload of a tenant a worker has nothing of, whoever
   * it is; only when twice as much fits, like any spare, and recalled like
   * them before a refusal. Counts against no tenant until an admission takes
   * it over.
   */
  async tryDiskSpare(bytes: number): Promise<DiskSpareHold | null> {
    const { guard } = this.deps;
    await guard.refresh();
    if (guard.headroomBytes() < 2 * bytes) return null;
    const reservation = guard.reserveNow(bytes);
    this.sparesOut++;
    this.spareReserved += reservation.reserved;
    return new LocalDiskSpare(this, reservation);
  }

  /** @internal A disk spare is taken (by an admission) or given back: it is no spare any more. */
  diskSpareEnded(bytes: number): void {
    this.sparesOut--;
    this.spareReserved -= bytes;
  }

  private async admitOnce(request: HoldRequest, attempt: Attempt): Promise<LocalHold> {
    const { deps } = this;
    const { tenant, cls, declaredBytes } = request;
    const quota = cls.maxBytesPerTenant;
    const want = declaredBytes ?? (quota === null ? this.growStepBytes : Math.min(this.growStepBytes, quota));
    // Cheap refusals first: a retry storm is turned away before any index or disk reading
    // (inflightBytes, a share of the disk, waits for the refreshed reading below).
    if (!attempt.counted) {
      this.checkLimits(tenant, want, true, attempt.quiet);
      this.rates.takeUpload(tenant);
      attempt.counted = true;
    }

    if (quota === null) {
      await deps.guard.refresh();
      return this.decide(request, want, undefined, attempt);
    }
    const key = classTenantKey(tenant, cls.name);
    const state = this.quotaState(key);
    // Keeps the state (its last reading) alive until this admission has decided.
    state.admitting++;
    try {
      // A chunked body needs any room at all; it then holds up to a step of it.
      const need = declaredBytes ?? 1;
      const used = await this.readUsed(key, tenant, cls.name);
      const evictable = cls.evictable && !attempt.spare;
      if (need > quota || (used + need > quota && !evictable)) throw this.exceeded(tenant, cls, key, want, false, attempt.quiet);
      if (used + want > quota && evictable) {
        await deps.makeRoom(tenant, cls, used + want - quota);
        await this.readUsed(key, tenant, cls.name);
      }
      await deps.guard.refresh();
      return this.decide(request, want, state, attempt);
    } finally {
      state.admitting--;
      this.dropIfIdle(key, state);
    }
  }

  /** The synchronous end of admit(): limits, quota and disk on the same numbers, then the holds. */
  private decide(request: HoldRequest, want: number, state: QuotaState | undefined, attempt: Attempt): LocalHold {
    const { deps } = this;
    const { tenant, cls, declaredBytes } = request;
    if (attempt.spare && !this.farFromLimits(tenant, want, state, cls.maxBytesPerTenant)) throw NO_SPARE;
    // uploadsPerMinute was taken at the start: an admission counts once.
    this.checkLimits(tenant, want, false, attempt.quiet);
    let quotaHeld = 0;
    if (state) {
      const room = (cls.maxBytesPerTenant ?? 0) - this.usedOf(state);
      if (declaredBytes !== null ? declaredBytes > room : room <= 0) throw this.exceeded(tenant, cls, classTenantKey(tenant, cls.name), want, false, attempt.quiet);
      quotaHeld = declaredBytes ?? Math.min(want, room);
    }
    // A disk spare's room was reserved when it was granted: the upload takes it over, shrunk to its size.
    const reservation = attempt.disk ? attempt.disk.handOver(declaredBytes!) : deps.guard.reserveNow(declaredBytes);
    // After the disk: an upload the disk cannot take at all is a 507, whatever the tenant holds.
    try {
      this.checkInflightBytes(tenant, reservation.reserved, attempt.quiet);
    } catch (err) {
      reservation.release();
      throw err;
    }
    if (attempt.spare) this.rates.takeUpload(tenant);
    if (declaredBytes !== null) this.rates.takeBytes(tenant, declaredBytes);
    if (state) {
      state.held += quotaHeld;
      state.holds++;
    }
    const t = this.tenantState(tenant);
    t.uploads++;
    t.bytes += reservation.reserved;
    t.byClass.set(cls.name, (t.byClass.get(cls.name) ?? 0) + (state ? quotaHeld : reservation.reserved));
    const hold = new LocalHold(this, { tenant, cls, chunked: declaredBytes === null }, reservation, quotaHeld);
    if (attempt.spare) {
      hold.spare = true;
      this.sparesOut++;
      this.spareReserved += hold.reserved;
      t.spare.uploads++;
      t.spare.bytes += hold.reserved;
      t.spare.byClass.set(cls.name, (t.spare.byClass.get(cls.name) ?? 0) + hold.classBytes);
    }
    return hold;
  }

  /** A spare of `bytes` is granted only when twice as much, and two more uploads, would fit every limit, the quota and the disk. */
  private farFromLimits(tenant: string, bytes: number, state: QuotaState | undefined, quota: number | null): boolean {
    const limits = this.deps.limits();
    const t = this.tenants.get(tenant);
    if (!this.rates.fits(tenant, 2, 2 * bytes)) return false;
    if (limits.inflightUploads !== null && (t?.uploads ?? 0) + 2 > limits.inflightUploads) return false;
    if (state && (quota ?? 0) - this.usedOf(state) < 2 * bytes) return false;
    if (this.deps.guard.headroomBytes() < 2 * bytes) return false;
    return limits.inflightBytes === null
      || (t?.bytes ?? 0) + 2 * bytes <= inflightBytesLimit(limits.inflightBytes, this.deps.guard.roomAboveReserveBytes()).bytes;
  }

  /** Spare holds out (granted, not taken by an upload): the clustered primary recalls them before a refusal. */
  get spareHolds(): number {
    return this.sparesOut;
  }

  get spareBytes(): number {
    return this.spareReserved;
  }

  /** Uploads holding space now, all tenants (spare holds are not uploads yet). */
  get inflightUploads(): number {
    let uploads = 0;
    for (const t of this.tenants.values()) uploads += t.uploads - t.spare.uploads;
    return uploads;
  }

  inflightOf(tenant: string): TenantInflight {
    const t = this.tenants.get(tenant);
    if (!t) return { uploads: 0, bytes: 0, byClass: {} };
    const byClass: Record<string, number> = {};
    for (const [cls, bytes] of t.byClass) {
      const own = bytes - (t.spare.byClass.get(cls) ?? 0);
      if (own > 0) byClass[cls] = own;
    }
    return { uploads: t.uploads - t.spare.uploads, bytes: t.bytes - t.spare.bytes, byClass };
  }

  /** Throws 429 when one more upload of `bytes` would pass a limit of the tenant. */
  private checkLimits(tenant: string, bytes: number, countUpload: boolean, quiet: boolean): void {
    this.rates.check(tenant, bytes, countUpload, quiet);
    const { inflightUploads } = this.deps.limits();
    if (inflightUploads !== null && (this.tenants.get(tenant)?.uploads ?? 0) + 1 > inflightUploads) {
      throw rateLimited(quiet ? undefined : this.deps.observer, tenant, 'inflightUploads', `${inflightUploads} uploads in flight`, 1);
    }
  }

  /** @internal Throws 429 when holding `bytes` more would put the tenant past limits.tenant.inflightBytes. */
  checkInflightBytes(tenant: string, bytes: number, quiet = false): void {
    const limit = this.deps.limits().inflightBytes;
    if (limit === null) return;
    const held = this.tenants.get(tenant)?.bytes ?? 0;
    const max = inflightBytesLimit(limit, this.deps.guard.roomAboveReserveBytes());
    if (held + bytes <= max.bytes) return;
    throw rateLimited(quiet ? undefined : this.deps.observer, tenant, 'inflightBytes', `${max.value} in flight`, 1, { inflightBytes: held, requestedBytes: bytes, limitBytes: max.bytes });
  }

  /** @internal A 507 quota_exceeded for `incomingBytes` more in the tenant's class. */
  exceeded(tenant: string, cls: StorageClass, key: string, incomingBytes: number, midStream = false, quiet = false): HttpError {
    const state = this.quotas.get(key);
    const usedBytes = state ? this.usedOf(state) : 0;
    const inflightBytes = state?.held ?? 0;
    const quotaBytes = cls.maxBytesPerTenant ?? 0;
    if (!quiet) this.deps.observer?.quotaRefused(tenant, cls.name);
    const start = midStream ? 'This upload grew past the quota and was cut off; nothing was stored. ' : '';
    return new HttpError('quota_exceeded',
      `${start}Tenant "${tenant}" uses ${formatBytes(usedBytes)} of its ${formatBytes(quotaBytes)} quota in class "${cls.name}" ` +
      `(${formatBytes(inflightBytes)} of it held by uploads in flight); this upload of ${formatBytes(incomingBytes)} does not fit. ` +
      `Delete files or raise classes.${cls.name}.maxBytesPerTenant.`,
      { tenant, class: cls.name, usedBytes, inflightBytes, quotaBytes, incomingBytes });
  }

  /** Reads the tenant's stored bytes of a class from the index; returns stored + committed since + held. */
  private async readUsed(key: string, tenant: string, cls: string): Promise<number> {
    const state = this.quotaState(key);
    const start = ++this.seq;
    state.reading.add(start);
    let stored: number;
    try {
      stored = await this.deps.storedBytes(tenant, cls);
    } finally {
      state.reading.delete(start);
    }
    if (start > state.lastReadSeq) {
      state.lastStored = stored;
      state.lastReadSeq = start;
    }
    const oldest = Math.min(state.lastReadSeq, ...state.reading);
    state.commits = state.commits.filter((c) => c.seq > oldest);
    return this.usedOf(state);
  }

  /** @internal stored (last reading) + committed since that reading started + held by live uploads. */
  usedOf(state: QuotaState): number {
    let committed = 0;
    for (const c of state.commits) if (c.seq > state.lastReadSeq) committed += c.bytes;
    return state.lastStored + committed + state.held;
  }

  /** @internal */
  quotaState(key: string): QuotaState {
    let state = this.quotas.get(key);
    if (!state) {
      // Never read: lastReadSeq 0 is older than any commit, and the first admission reads before it decides.
      state = { held: 0, holds: 0, admitting: 0, lastStored: 0, lastReadSeq: 0, commits: [], reading: new Set() };
      this.quotas.set(key, state);
    }
    return state;
  }

  /** @internal Nothing held, nothing being read: a fresh index reading contains every commit, so forget the state. */
  dropIfIdle(key: string, state: QuotaState): void {
    if (state.holds === 0 && state.admitting === 0 && state.reading.size === 0) this.quotas.delete(key);
  }

  /**
   * @internal Grows a hold's quota part by at least `missing` bytes (a step
   * when it fits), evicting in an evictable class; throws 507 quota_exceeded.
   */
  growQuota(hold: LocalHold, missing: number): void | Promise<void> {
    const { tenant, cls } = hold.owner;
    const quota = cls.maxBytesPerTenant!;
    const key = classTenantKey(tenant, cls.name);
    const state = this.quotaState(key);
    const take = (): boolean => {
      const room = quota - this.usedOf(state);
      if (room < missing) return false;
      const grow = Math.min(Math.max(this.growStepBytes, missing), room);
      hold.quotaHeld += grow;
      state.held += grow;
      this.addClassBytes(tenant, cls.name, grow);
      return true;
    };
    if (take()) return;
    if (!cls.evictable) throw this.exceeded(tenant, cls, key, hold.written + missing, true);
    return (async () => {
      await this.deps.makeRoom(tenant, cls, this.usedOf(state) + missing - quota);
      await this.readUsed(key, tenant, cls.name);
      if (!take()) throw this.exceeded(tenant, cls, key, hold.written + missing, true);
    })();
  }

  /** @internal */
  addClassBytes(tenant: string, cls: string, bytes: number): void {
    const t = this.tenantState(tenant);
    t.byClass.set(cls, (t.byClass.get(cls) ?? 0) + bytes);
  }

  /** @internal The disk part of a hold grew or ended. */
  addTenantBytes(tenant: string, bytes: number): void {
    this.tenantState(tenant).bytes += bytes;
  }

  /** @internal A chunked upload's bytes count against bytesPerMinute as they arrive. */
  countBytes(tenant: string, bytes: number): void {
    this.rates.takeBytes(tenant, bytes);
  }

  /** @internal A hold ended: stored (commit) or not. */
  finish(hold: LocalHold, reservation: Reservation, kept: boolean): void {
    const { tenant, cls } = hold.owner;
    const t = this.tenantState(tenant);
    t.uploads--;
    t.bytes -= reservation.reserved;
    const classBytes = (t.byClass.get(cls.name) ?? 0) - (cls.maxBytesPerTenant === null ? reservation.reserved : hold.quotaHeld);
    if (classBytes > 0) t.byClass.set(cls.name, classBytes);
    else t.byClass.delete(cls.name);
    if (t.uploads === 0) this.tenants.delete(tenant);
    if (cls.maxBytesPerTenant !== null) {
      const key = classTenantKey(tenant, cls.name);
      const state = this.quotaState(key);
      state.held -= hold.quotaHeld;
      state.holds--;
      if (kept && hold.written > 0) state.commits.push({ bytes: hold.written, seq: ++this.seq });
      this.dropIfIdle(key, state);
    }
  }

  /**
   * @internal A spare hold ends its spareness: taken by an upload of
   * `declaredBytes` (it shrinks to that; the bytes tokens it took beyond
   * are given back), or given back unused (`declaredBytes` null: its upload
   * and bytes tokens too).
   */
  unspare(hold: LocalHold, declaredBytes: number | null): void {
    const { tenant, cls } = hold.owner;
    this.sparesOut--;
    this.spareReserved -= hold.reserved;
    const t = this.tenantState(tenant);
    t.spare.uploads--;
    t.spare.bytes -= hold.reserved;
    const spareClass = (t.spare.byClass.get(cls.name) ?? 0) - hold.classBytes;
    if (spareClass > 0) t.spare.byClass.set(cls.name, spareClass);
    else t.spare.byClass.delete(cls.name);
    if (declaredBytes === null) {
      this.rates.give(tenant, 1, hold.reserved);
      return;
    }
    const unused = hold.reserved - declaredBytes;
    if (unused <= 0) return;
    this.rates.give(tenant, 0, unused);
    const before = { reserved: hold.reserved, quotaHeld: hold.quotaHeld, classBytes: hold.classBytes };
    hold.shrinkTo(declaredBytes);
    if (cls.maxBytesPerTenant !== null) this.quotaState(classTenantKey(tenant, cls.name)).held -= before.quotaHeld - hold.quotaHeld;
    t.bytes -= before.reserved - hold.reserved;
    this.addClassBytes(tenant, cls.name, hold.classBytes - before.classBytes);
  }

  private tenantState(tenant: string): TenantState {
    let t = this.tenants.get(tenant);
    if (!t) {
      t = { uploads: 0, bytes: 0, byClass: new Map(), spare: { uploads: 0, bytes: 0, byClass: new Map() } };
      this.tenants.set(tenant, t);
    }
    return t;
  }

}

/** One upload's holds: its disk reservation and its quota part; finished once. */
export class LocalHold implements SpareHold {
  /** @internal Bytes held against the tenant's class quota (0 without a quota). */
  quotaHeld: number;
  /** @internal Admitted ahead (trySpare), not taken by an upload yet. */
  spare = false;
  private finished = false;

  constructor(
    private readonly ledger: LocalLedger,
    readonly owner: { tenant: string; cls: StorageClass; chunked: boolean },
    private readonly reservation: Reservation,
    quotaHeld: number,
  ) {
    this.quotaHeld = quotaHeld;
  }

  get written(): number {
    return this.reservation.written;
  }

  /** @internal Disk bytes held. */
  get reserved(): number {
    return this.reservation.reserved;
  }

  /** @internal What the hold counts in its tenant's class (inflightOf's byClass). */
  get classBytes(): number {
    return this.owner.cls.maxBytesPerTenant === null ? this.reservation.reserved : this.quotaHeld;
  }

  /** @internal A spare taken by an upload: holds `bytes` now. */
  shrinkTo(bytes: number): void {
    this.reservation.shrinkTo(bytes);
    if (this.owner.cls.maxBytesPerTenant !== null) this.quotaHeld = Math.min(this.quotaHeld, Math.max(bytes, this.written));
  }

  take(declaredBytes: number): void {
    if (!this.spare || this.finished) return;
    this.spare = false;
    this.ledger.unspare(this, declaredBytes);
  }

  /** Bytes this hold may count without growing: its disk reservation, and its quota hold when the class has a quota. */
  get allowance(): number {
    return this.owner.cls.maxBytesPerTenant === null ? this.reservation.reserved : Math.min(this.reservation.reserved, this.quotaHeld);
  }

  wrote(bytes: number): void | Promise<void> {
    if (this.finished) throw new Error('bytes written after the hold was finished');
    const missing = this.written + bytes - this.quotaHeld;
    if (this.owner.cls.maxBytesPerTenant !== null && missing > 0) {
      const growing = this.ledger.growQuota(this, missing);
      if (growing) return growing.then(() => this.wroteDisk(bytes));
    }
    this.wroteDisk(bytes);
  }

  private wroteDisk(bytes: number): void {
    const { reservation, ledger, owner } = this;
    const before = reservation.reserved;
    // The disk first (507 when the step does not fit), then the tenant's share of it (429).
    reservation.wrote(bytes);
    if (owner.chunked) ledger.countBytes(owner.tenant, bytes);
    if (reservation.reserved === before) return;
    ledger.addTenantBytes(owner.tenant, reservation.reserved - before);
    if (owner.cls.maxBytesPerTenant === null) ledger.addClassBytes(owner.tenant, owner.cls.name, reservation.reserved - before);
    ledger.checkInflightBytes(owner.tenant, 0);
  }

  commit(): void {
    this.end(true);
  }

  release(): void {
    this.end(false);
  }

  private end(kept: boolean): void {
    if (this.finished) return;
    this.finished = true;
    if (this.spare) {
      // Never an upload's: its tokens go back too.
      this.spare = false;
      this.ledger.unspare(this, null);
    }
    // The ledger reads the reservation's size before the guard forgets it.
    this.ledger.finish(this, this.reservation, kept);
    if (kept) this.reservation.commit();
    else this.reservation.release();
  }
}

/** A disk spare (LocalLedger.tryDiskSpare): a disk reservation no upload has yet; an admission takes it over, or it is given back. */
class LocalDiskSpare implements DiskSpareHold {
  private spare = true;
  private handedOver = false;

  constructor(private readonly ledger: LocalLedger, private readonly reservation: Reservation) {}

  readonly written = 0;

  get allowance(): number {
    return this.reservation.reserved;
  }

  wrote(): never {
    throw new Error('a disk spare counts no bytes: an admission takes it over first');
  }

  /** @internal An admission started with it: it is no spare to recall any more. */
  claim(): void {
    if (!this.spare) return;
    this.spare = false;
    this.ledger.diskSpareEnded(this.reservation.reserved);
  }

  /** @internal The admission decided: its hold's disk reservation is this one, shrunk to `bytes`. */
  handOver(bytes: number): Reservation {
    this.claim();
    this.handedOver = true;
    this.reservation.shrinkTo(bytes);
    return this.reservation;
  }

  commit(): void {
    this.release();
  }

  release(): void {
    this.claim();
    if (!this.handedOver) this.reservation.release();
  }
}
