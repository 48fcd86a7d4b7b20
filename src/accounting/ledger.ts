import type { StorageClass } from '../classes.js';

/**
 * The one accounting seam of uploads (docs/design.md §6, §7): every byte an
 * upload may write is held here before it is written — against the disk
 * reserve, against its tenant's quota in its storage class, and against its
 * tenant's limits — and given back when the upload ends.
 *
 * The node's own implementation is in-process (LocalLedger). The interface
 * is narrow and every call may be asynchronous so that a clustered node can
 * put it behind IPC to one primary, and several nodes behind a shared
 * database, without touching the write path: admission is one call per
 * upload, growth one call per grow step (not per chunk), and the end one
 * call.
 */
export interface Ledger {
  /**
   * Admits an upload before a byte of its body is read: limits (429
   * rate_limited), the tenant's class quota (507 quota_exceeded; an
   * evictable class first makes room from that tenant's own least recently
   * used files), the disk reserve (507 insufficient_storage). Resolves to the
   * upload's hold, or rejects with that HttpError.
   */
  admit(request: HoldRequest): Promise<Hold>;
  /** What a tenant holds now (for /usage). */
  inflightOf(tenant: string): TenantInflight;
}

/** The key of a (tenant, class) in the ledgers' maps: the quota state of one, the spare holds of the other. */
export function classTenantKey(tenant: string, cls: string): string {
  return `${cls}\u0000${tenant}`;
}

/** The tenant of a classTenantKey (class names have no NUL). */
export function tenantOfKey(key: string): string {
  return key.slice(key.indexOf('\u0000') + 1);
}

/** What an upload declares to the ledger. */
export interface HoldRequest {
  tenant: string;
  cls: StorageClass;
  /** Content-Length; null (chunked): the hold starts at one grow step and grows as bytes arrive. */
  declaredBytes: number | null;
  /**
   * The client sends its body only once admitted (`Expect: 100-continue`):
   * decide before the body, never on a disk spare (whose verdict comes
   * during the body).
   */
  decideBeforeBody?: boolean;
}

/**
 * What one upload holds; finished exactly once, by commit() or release().
 * Invariant: a tenant's stored + held bytes in a class never exceed its
 * quota, and all holds never reach into the disk reserve.
 */
export interface Hold {
  /** Bytes counted so far. */
  readonly written: number;
  /**
   * Counts bytes about to be written; grows the hold by a step when they do
   * not fit. Returns a promise only when growing has to wait (eviction in an
   * evictable class, a remote ledger); throws or rejects with 507/429 when
   * the upload may not grow.
   */
  wrote(bytes: number): void | Promise<void>;
  /**
   * Resolves once the ledger has decided the upload, or rejects with its
   * refusal: undefined (decided at admission) but for an upload admitted on
   * a clustered worker's disk spare, whose body runs while the primary
   * decides. The write path waits for it before the upload becomes visible.
   */
  decided?(): void | Promise<void>;
  /** The upload is stored (its index row written): its bytes count as stored now. */
  commit(): void;
  /** The upload failed or was aborted: everything it held is free at once. No-op once finished. */
  release(): void;
}

/** A tenant's uploads in flight: how many, the disk bytes they hold, and their quota holds per class. */
export interface TenantInflight {
  uploads: number;
  bytes: number;
  byClass: Record<string, number>;
}

/** The names of limits.tenant, as 429 answers and metrics name them. */
export type TenantLimit = 'uploadsPerMinute' | 'bytesPerMinute' | 'inflightUploads' | 'inflightBytes';

/** Told about every refusal by a tenant limit or quota (monitoring counts them). */
export interface LedgerObserver {
  throttled(tenant: string, limit: TenantLimit, value: string): void;
  quotaRefused(tenant: string, cls: string): void;
}

/** A hold that says how many bytes it covers now (a clustered node's primary hands that to the worker). */
export interface AllowanceHold extends Hold {
  /** Bytes the hold may count without growing. */
  readonly allowance: number;
}

/**
 * A hold admitted ahead of an upload (a worker's spare, docs/design.md §14):
 * it counts as an upload in flight for every limit, and is shown as one
 * only once an upload takes it.
 */
export interface SpareHold extends AllowanceHold {
  /** An upload of `declaredBytes` (≤ the allowance) takes the hold: it shrinks to that, and tokens taken beyond it are given back. */
  take(declaredBytes: number): void;
  /** Released before any upload took it: its upload and bytes tokens are given back too. */
  release(): void;
}

/**
 * Room on the disk held ahead for an upload of any tenant (a worker's disk
 * spare, docs/design.md §14): no tenant's limit or quota is counted in it
 * until an admission takes it over as the disk part of its hold.
 */
export interface DiskSpareHold extends AllowanceHold {
  /** Given back unused (or the admission that took it over was refused): the room is free again. */
  release(): void;
}

/** A ledger that decides itself (not through another process): the one a clustered node's primary serves its workers. */
export interface DecidingLedger extends Ledger {
  /**
   * `disk`: a disk spare whose room the upload takes over (shrunk to its
   * declared size) instead of reserving room anew; released when the
   * admission is refused.
   */
  admit(request: HoldRequest, disk?: DiskSpareHold): Promise<AllowanceHold>;
  /** Uploads this ledger holds space for now. */
  readonly inflightUploads: number;
  /**
   * Spare holds, where the ledger gives them (the in-process one; not the
   * one shared by several nodes): a hold of `declaredBytes` admitted ahead,
   * or null when that would come near any limit.
   */
  trySpare?(request: HoldRequest & { declaredBytes: number }): Promise<SpareHold | null>;
  /** A disk spare of `bytes`, or null when twice as much would not fit above the reserve. */
  tryDiskSpare?(bytes: number): Promise<DiskSpareHold | null>;
  /** Spare holds out now (disk spares among them), and the disk bytes they hold. */
  readonly spareHolds?: number;
  readonly spareBytes?: number;
  /** Called before a refusal while spare holds are out (one tenant's, or all); resolves to how many came back. */
  recallSparesWith?(recall: (tenant?: string) => Promise<number>): void;
}
