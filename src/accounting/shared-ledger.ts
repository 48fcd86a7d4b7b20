import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { HttpError, isHttpError } from '../errors.js';
import { formatBytes } from '../config/units.js';
import type { StorageClass } from '../classes.js';
import type { Logger } from '../logger.js';
import type { HoldLimits, HoldsPart, HoldVerdict } from '../index/index.js';
import type { AllowanceHold, DecidingLedger, HoldRequest, LedgerObserver, TenantInflight } from './ledger.js';
import type { TenantLimits } from './tenant-rates.js';
import { inflightBytesLimit, rateLimited, TenantRates } from './tenant-rates.js';

export interface SharedLedgerDeps {
  holds: HoldsPart;
  /** This node process's id in the index: its lease, its holds, its name claims (default: a newNodeId()). */
  nodeId?: string;
  /** The bytes the cluster may store and hold in all (the store's capacity minus its reserve), and the reserve, now. */
  room: () => { roomBytes: number; reserveBytes: number; capacityBytes: number };
  /** Evicts at least `bytes` of the tenant's own least recently used files of an evictable class (best effort). */
  makeRoom(tenant: string, cls: StorageClass, bytes: number): Promise<void>;
  limits: () => TenantLimits;
  now: () => number;
  logger: Logger;
  observer?: LedgerObserver;
  /** Step by which a body without Content-Length holds more as it grows. */
  growStepBytes?: number;
  /** How long this node's holds count without a renewal of its lease. */
  leaseMs?: number;
}

/** How long a node's holds outlive it (and how often it renews: a third of it). */
export const NODE_LEASE_MS = 15_000;

/** A new id for a node process of a cluster (host, pid and a random part: a restarted process is a new node). */
export function newNodeId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

/**
 * The lease of a node process that decides nothing itself (a worker of a
 * clustered node, whose ledger is the primary's): its name claims count
 * while it renews, and are swept once it died (docs/design.md §15).
 */
export class NodeLease {
  private timer: NodeJS.Timeout | undefined;
  readonly leaseMs: number;

  constructor(private readonly deps: {
    holds: HoldsPart; nodeId: string; now: () => number; logger: Logger; leaseMs?: number;
    /** Runs after each renewal (the deciding ledger's housekeeping). */
    afterRenew?: (nowMs: number) => Promise<void>;
  }) {
    this.leaseMs = deps.leaseMs ?? NODE_LEASE_MS;
  }

  /** Registers the node, then renews every third of the lease. */
  async start(): Promise<void> {
    await this.renew();
    this.timer = setInterval(() => {
      this.renew().catch((err: unknown) => this.deps.logger.warn('could not renew this node\'s lease in the index', { error: (err as Error).message }));
    }, Math.max(100, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
  }

  async renew(): Promise<void> {
    const nowMs = this.deps.now();
    await this.deps.holds.renewLease(this.deps.nodeId, nowMs, this.leaseMs);
    await this.deps.afterRenew?.(nowMs);
  }

  /** What a node that died does: it stops renewing (tests). */
  stopRenewing(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The node leaves: what it held stops counting at once. */
  async stop(): Promise<void> {
    this.stopRenewing();
    await this.deps.holds.leave(this.deps.nodeId).catch((err: unknown) => this.deps.logger.warn('could not leave the cluster cleanly; what this node held ends with its lease', { error: (err as Error).message }));
  }
}

/**
 * The ledger of a node that shares its store and its index with other nodes
 * (index.engine "postgres", docs/design.md §15): every admission and every
 * grow step is one transaction of the shared index (HoldsPart.take), so the
 * store's capacity, the tenant quotas and the in-flight limits hold for the
 * cluster, counting every node's uploads in flight. A node's holds count
 * while its lease runs: one that dies stops holding within NODE_LEASE_MS.
 * The per-minute rate limits are counted by each node for itself (a token
 * bucket per node: a tenant may get up to N times the rate through N nodes).
 * When the database cannot be reached, uploads get 503 with Retry-After.
 */
export class SharedLedger implements DecidingLedger {
  readonly nodeId: string;
  private seq = 0;
  private readonly mine = new Map<string, TenantInflight>();
  private readonly rates: TenantRates;
  private readonly lease: NodeLease;
  /** Holds whose row could not be dropped yet (the database did not answer). */
  private readonly unreleased = new Set<string>();
  readonly growStepBytes: number;

  constructor(private readonly deps: SharedLedgerDeps) {
    this.nodeId = deps.nodeId ?? newNodeId();
    this.growStepBytes = deps.growStepBytes ?? 1 << 20;
    this.rates = new TenantRates(deps);
    this.lease = new NodeLease({ ...deps, nodeId: this.nodeId, afterRenew: (nowMs) => this.afterRenew(nowMs) });
  }

  /** Registers this node and keeps its lease. */
  start(): Promise<void> {
    return this.lease.start();
  }

  /** With each renewal: rows that could not be dropped are dropped, and the rows of nodes whose lease ended. */
  private async afterRenew(nowMs: number): Promise<void> {
    for (const id of this.unreleased) this.drop(id);
    const gone = await this.deps.holds.expire(nowMs);
    if (gone > 0) this.deps.logger.warn('nodes whose lease ended no longer hold space', { nodes: gone });
  }

  /** @internal What a node that died does: it stops renewing its lease (tests). */
  stopRenewing(): void {
    this.lease.stopRenewing();
  }

  /** @internal Renews now and drops the rows of nodes whose lease ended (tests; the timer does it every lease / 3). */
  renewNow(): Promise<void> {
    return this.lease.renew();
  }

  /** This node leaves: its holds stop counting at once. */
  stop(): Promise<void> {
    return this.lease.stop();
  }

  get inflightUploads(): number {
    let uploads = 0;
    for (const t of this.mine.values()) uploads += t.uploads;
    return uploads;
  }

  /** This node's uploads of a tenant (the cluster's are in the index). */
  inflightOf(tenant: string): TenantInflight {
    return this.mine.get(tenant) ?? { uploads: 0, bytes: 0, byClass: {} };
  }

  async admit(request: HoldRequest): Promise<AllowanceHold> {
    const { tenant, cls, declaredBytes } = request;
    const want = declaredBytes ?? this.growStepBytes;
    this.rates.check(tenant, want, true);
    const id = `${this.nodeId}/${++this.seq}`;
    await this.take(id, tenant, cls, want, true);
    this.rates.takeUpload(tenant);
    if (declaredBytes !== null) this.rates.takeBytes(tenant, declaredBytes);
    const mine = this.mine.get(tenant) ?? { uploads: 0, bytes: 0, byClass: {} };
    mine.uploads++;
    mine.bytes += want;
    mine.byClass[cls.name] = (mine.byClass[cls.name] ?? 0) + want;
    this.mine.set(tenant, mine);
    return new SharedHold(this, id, { tenant, cls, chunked: declaredBytes === null }, want);
  }

  /**
   * @internal Takes `bytes` more for hold `id` in the shared index; in an
   * evictable class over its quota, evicts the tenant's own files once and
   * tries again. Throws 507 / 429 / 503.
   */
  async take(id: string, tenant: string, cls: StorageClass, bytes: number, admitting: boolean): Promise<void> {
    let verdict = await this.takeOnce(id, tenant, cls, bytes);
    if (!verdict.ok && verdict.limit === 'quota' && cls.evictable) {
      await this.deps.makeRoom(tenant, cls, verdict.usedBytes + bytes - (cls.maxBytesPerTenant ?? 0));
      verdict = await this.takeOnce(id, tenant, cls, bytes);
    }
    if (!verdict.ok) throw this.refusal(verdict, tenant, cls, bytes, admitting);
  }

  private async takeOnce(id: string, tenant: string, cls: StorageClass, bytes: number): Promise<HoldVerdict> {
    const tenantLimits = this.deps.limits();
    const { roomBytes } = this.deps.room();
    const limits: HoldLimits = {
      roomBytes,
      quotaBytes: cls.maxBytesPerTenant,
      inflightUploads: tenantLimits.inflightUploads,
      inflightBytes: tenantLimits.inflightBytes === null ? null : inflightBytesLimit(tenantLimits.inflightBytes, roomBytes).bytes,
    };
    try {
      return await this.deps.holds.take({ id, nodeId: this.nodeId, tenant, cls: cls.name, bytes }, limits, this.deps.now());
    } catch (err) {
      throw unreachable(err);
    }
  }

  private refusal(verdict: Exclude<HoldVerdict, { ok: true }>, tenant: string, cls: StorageClass, bytes: number, admitting: boolean): HttpError {
    const cut = admitting ? '' : 'This upload grew past what it may hold and was cut off; nothing was stored. ';
    if (verdict.limit === 'room') {
      const { reserveBytes, capacityBytes } = this.deps.room();
      const freeBytes = Math.max(0, capacityBytes - verdict.usedBytes - verdict.heldBytes);
      return new HttpError('insufficient_storage',
        `${cut}Not enough room in the store for this upload: ${formatBytes(freeBytes)} free of ${formatBytes(capacityBytes)} (storage.s3.capacityBytes) ` +
        `across the cluster, ${formatBytes(reserveBytes)} kept in reserve, ${formatBytes(verdict.heldBytes)} held by uploads in flight on all nodes, ` +
        `${formatBytes(bytes)} more needed. Retry after Retry-After seconds, or free space: delete files or run \`nanocdn cleanup\`.`,
        { freeBytes, requiredBytes: bytes + reserveBytes + verdict.heldBytes, reserveBytes },
        { 'Retry-After': '60' });
    }
    if (verdict.limit === 'quota') {
      this.deps.observer?.quotaRefused(tenant, cls.name);
      const quotaBytes = cls.maxBytesPerTenant ?? 0;
      return new HttpError('quota_exceeded',
        `${cut}Tenant "${tenant}" uses ${formatBytes(verdict.usedBytes)} of its ${formatBytes(quotaBytes)} quota in class "${cls.name}" ` +
        `(${formatBytes(verdict.heldBytes)} of it held by uploads in flight on all nodes); this upload of ${formatBytes(bytes)} does not fit. ` +
        `Delete files or raise classes.${cls.name}.maxBytesPerTenant.`,
        { tenant, class: cls.name, usedBytes: verdict.usedBytes, inflightBytes: verdict.heldBytes, quotaBytes, incomingBytes: bytes });
    }
    const limits = this.deps.limits();
    if (verdict.limit === 'inflightUploads' || limits.inflightBytes === null) {
      return rateLimited(this.deps.observer, tenant, 'inflightUploads', `${limits.inflightUploads} uploads in flight`, 1);
    }
    const max = inflightBytesLimit(limits.inflightBytes, this.deps.room().roomBytes);
    return rateLimited(this.deps.observer, tenant, 'inflightBytes', `${max.value} in flight`, 1,
      { inflightBytes: verdict.heldBytes, requestedBytes: bytes, limitBytes: max.bytes });
  }

  /** @internal A hold ended: its row goes (stored bytes are counted from the files row, written before). */
  finish(hold: SharedHold): void {
    const mine = this.mine.get(hold.owner.tenant);
    if (mine) {
      mine.uploads--;
      mine.bytes -= hold.allowance;
      const left = (mine.byClass[hold.owner.cls.name] ?? 0) - hold.allowance;
      if (left > 0) mine.byClass[hold.owner.cls.name] = left;
      else delete mine.byClass[hold.owner.cls.name];
      if (mine.uploads === 0) this.mine.delete(hold.owner.tenant);
    }
    this.drop(hold.id);
  }

  /** Drops a hold's row; when the database does not answer, the lease renewal tries again (the row must not outlive its upload). */
  private drop(id: string): void {
    this.deps.holds.release(id).then(() => this.unreleased.delete(id), (err: unknown) => {
      if (!this.unreleased.has(id)) this.deps.logger.warn('could not drop a hold from the index; retried with the lease renewal', { error: (err as Error).message });
      this.unreleased.add(id);
    });
  }

  /** @internal A chunked upload's bytes count against bytesPerMinute as they arrive. */
  countBytes(tenant: string, bytes: number): void {
    this.rates.takeBytes(tenant, bytes);
  }

  /** @internal */
  grew(hold: SharedHold, bytes: number): void {
    const mine = this.mine.get(hold.owner.tenant);
    if (!mine) return;
    mine.bytes += bytes;
    mine.byClass[hold.owner.cls.name] = (mine.byClass[hold.owner.cls.name] ?? 0) + bytes;
  }
}

/** One upload's row in the shared holds; it writes up to its allowance without asking, then grows a step at a time. */
class SharedHold implements AllowanceHold {
  written = 0;
  allowance: number;
  private finished = false;
  private growing: Promise<void> | undefined;

  constructor(
    private readonly ledger: SharedLedger,
    readonly id: string,
    readonly owner: { tenant: string; cls: StorageClass; chunked: boolean },
    allowance: number,
  ) {
    this.allowance = allowance;
  }

  wrote(bytes: number): void | Promise<void> {
    if (this.finished) throw new Error('bytes written after the hold was finished');
    if (this.owner.chunked) this.ledger.countBytes(this.owner.tenant, bytes);
    const written = this.written + bytes;
    if (written <= this.allowance) {
      this.written = written;
      return;
    }
    const step = Math.max(this.ledger.growStepBytes, written - this.allowance);
    const growing = this.ledger.take(this.id, this.owner.tenant, this.owner.cls, step, false).then(() => {
      // Taken even if the upload ended meanwhile: the row holds it until end() drops it, after this.
      this.allowance += step;
      this.ledger.grew(this, step);
      if (this.finished) throw new Error('bytes written after the hold was finished');
      this.written = written;
    });
    this.growing = growing.catch(() => undefined);
    return growing;
  }

  commit(): void {
    this.end();
  }

  release(): void {
    this.end();
  }

  private end(): void {
    if (this.finished) return;
    this.finished = true;
    // A growth in flight would write the row again after a drop: drop after it.
    if (this.growing) void this.growing.then(() => this.ledger.finish(this));
    else this.ledger.finish(this);
  }
}

/** The database did not answer: 503 with Retry-After, never a 500 (docs/design.md §15). */
function unreachable(err: unknown): HttpError {
  if (isHttpError(err)) return err;
  return new HttpError('store_unavailable',
    `The index database cannot be reached (${(err as Error).message}); nothing was stored. Retry after Retry-After seconds.`,
    {}, { 'Retry-After': '5' });
}
