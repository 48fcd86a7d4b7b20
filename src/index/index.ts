/**
 * The metadata index (docs/design.md §10): what the node knows
 * about its stored files, apart from the bytes. The stored files are the
 * truth; src/index/reconcile.ts rebuilds the index from them.
 *
 * Every method returns a Promise so that an engine on a network database
 * (PostgreSQL, src/index/postgres/) implements the same interface; the SQLite
 * engine (src/index/sqlite/) answers at once. Each user sees only the part it
 * needs. Both pass test/index/contract.ts.
 */
export interface MetadataIndex {
  readonly files: FilesPart;
  readonly totals: TotalsPart;
  readonly candidates: CandidatesPart;
  readonly history: HistoryPart;
  readonly runs: RunsPart;
  readonly claims: ClaimsPart;
  readonly retired: RetiredPart;
  readonly scrubs: ScrubsPart;
  /** Holds of uploads in flight shared by the nodes of a cluster; only an engine several nodes share has it (PostgreSQL). */
  readonly holds?: HoldsPart;
  /** The eviction lock and schedule of a cluster; only an engine several nodes share has it (without: the lock is the host's, src/eviction/lock.ts, and each tick runs). */
  readonly eviction?: ClusterEvictionPart;
  /** True when this open created the index (nothing was stored before): the node rebuilds it from storage. */
  readonly created: boolean;
  /** The index answers (for /readyz). */
  isOpen(): Promise<boolean>;
  close(): Promise<void>;
}

/** One stored file as the index knows it. Times are epoch milliseconds. */
export interface FileRecord {
  name: string;
  tenant: string;
  class: string;
  size: number;
  sha256: string;
  createdMs: number;
  accessedMs: number;
  expiresMs: number | null;
}

/** The rows of stored files. */
export interface FilesPart {
  get(name: string): Promise<FileRecord | undefined>;
  /** Inserts or replaces the row of a name. */
  put(record: FileRecord): Promise<void>;
  /** Inserts or replaces many rows at once (all or none). */
  putMany(records: Iterable<FileRecord>): Promise<void>;
  /**
   * False when there was no row. With `retiredMs`, the name is retired at
   * that time with the row's checksum (RetiredPart), in the same transaction.
   */
  remove(name: string, retiredMs?: number | null): Promise<boolean>;
  /**
   * Removes the rows of these names at once (all or none); the number
   * removed. `retiredMs` says, per name, when it is retired (null: not).
   */
  removeMany(names: Iterable<string>, retiredMs?: (name: string) => number | null): Promise<number>;
  /** Applies last-access times at once; never moves a time backwards. */
  touchMany(entries: Iterable<[string, number]>): Promise<void>;
  /** Every indexed name, in name order, fetched in pages (writes may go on meanwhile). */
  names(): AsyncIterable<string>;
}

/** Files and bytes of one tenant in one class, kept exact as rows change. */
export interface UsageTotal {
  tenant: string;
  class: string;
  files: number;
  bytes: number;
}

/** Totals per tenant and class, never computed by scanning files. */
export interface TotalsPart {
  all(): Promise<UsageTotal[]>;
  /** Zeros when the tenant holds nothing in that class. */
  tenantClass(tenant: string, className: string): Promise<UsageTotal>;
  /** Files and bytes in all. */
  summary(): Promise<{ files: number; bytes: number }>;
  /** Files and bytes per class that holds any. */
  byClass(): Promise<{ class: string; files: number; bytes: number }[]>;
  /** The `limit` tenants holding the most bytes (ties by name). */
  topTenants(limit: number): Promise<{ tenant: string; files: number; bytes: number }[]>;
  /** Files and bytes of one tenant per class it holds any in, by class name. */
  ofTenant(tenant: string): Promise<{ class: string; files: number; bytes: number }[]>;
}

/** A stored file as eviction sees it (no checksum). */
export interface CandidateRow {
  readonly name: string;
  readonly tenant: string;
  readonly class: string;
  readonly size: number;
  readonly createdMs: number;
  readonly accessedMs: number;
  readonly expiresMs: number | null;
}

/** Narrows candidates to one tenant and/or one class. */
export interface CandidateScope {
  readonly tenant?: string;
  readonly class?: string;
}

/**
 * Eviction candidates in batches of at most `batch` rows, each batch fetched
 * when asked for (keyset pagination: no whole-table load, no sort per batch).
 */
export interface CandidatesPart {
  /** Files whose expiry time is at or before `now`, any class, by expiry time. */
  expired(now: number, scope: CandidateScope, batch: number): AsyncGenerator<CandidateRow[]>;
  /** Files of one class created at or before `createdBefore` or last read at or before `accessedBefore`, by name. */
  aged(cls: string, createdBefore: number, accessedBefore: number, scope: CandidateScope, batch: number): AsyncGenerator<CandidateRow[]>;
  /** One tenant's files of one class, least recently used first. */
  tenantLru(tenant: string, cls: string, batch: number): AsyncGenerator<CandidateRow[]>;
  /** Files of the given classes across tenants (or of scope.tenant), least recently used first. */
  globalLru(classes: readonly string[], scope: CandidateScope, batch: number): AsyncGenerator<CandidateRow[]>;
}

/** The disk's used bytes at one moment. */
export interface UsageSample {
  atMs: number;
  usedBytes: number;
}

/** Once an hour: keep each tenant's bytes at the start of `hourMs`, and drop older history. */
export interface HourlyRollup {
  hourMs: number;
  /** Samples before this go. */
  samplesFromMs: number;
  /** Hourly tenant rows before this go. */
  hourlyFromMs: number;
}

/** What each tenant held at the start of one hour. */
export interface TenantBaseline {
  hourMs: number;
  /** Sum over all tenants at that hour. */
  totalBytes: number;
  /** A tenant absent here held nothing then. */
  bytes: ReadonlyMap<string, number>;
}

/** Usage history kept with the index, so it survives restarts. */
export interface HistoryPart {
  /** Stores a sample; with `rollup`, also each tenant's current bytes at that hour (the first reading of an hour wins) and prunes, all at once. */
  record(sample: UsageSample, rollup?: HourlyRollup): Promise<void>;
  /** Stores a tenant's bytes at an hour unless that hour has one (tests, imports). */
  recordTenant(hourMs: number, tenant: string, bytes: number): Promise<void>;
  /** Samples at or after `sinceMs`, oldest first. */
  samplesSince(sinceMs: number): Promise<UsageSample[]>;
  /** The hour that began within the hour before `atMs`, else the earliest hour after it; null without history. */
  baselineAt(atMs: number): Promise<TenantBaseline | null>;
}

/** One real eviction run, as recorded. */
export interface RunRecord {
  atMs: number;
  reason: string;
  files: number;
  bytes: number;
  durationMs: number;
  error: string | null;
  /** Files and bytes removed per eviction reason (expired, max-age…); absent for runs recorded before it was kept. */
  byReason?: Readonly<Record<string, { files: number; bytes: number }>>;
}

/** A recorded run with its place in the log (ids only grow). */
export interface LoggedRun extends RunRecord {
  id: number;
}

/** Which last run: any, the last that removed a file, the last without an error. */
export type RunFilter = 'any' | 'removed' | 'succeeded';

/**
 * The eviction run log, shared by every process on this index (the cleanup
 * command's runs show in /usage and in the serving node's counters).
 */
export interface RunsPart {
  /** Records a run, all or nothing, and returns its id. Keeps the last 100 runs, and every run of the last 10 minutes up to 10,000. */
  record(run: RunRecord): Promise<number>;
  last(filter?: RunFilter): Promise<RunRecord | null>;
  /** The last `limit` runs, newest first. */
  recent(limit: number): Promise<RunRecord[]>;
  /** The id of the newest run, 0 when there is none: where a reader of since() starts. */
  cursor(): Promise<number>;
  /** At most `limit` runs with an id above `afterId`, oldest first. */
  since(afterId: number, limit: number): Promise<LoggedRun[]>;
}

/** One run of `nanocdn scrub`. */
export interface ScrubRecord {
  /** When it started (epoch ms). */
  atMs: number;
  durationMs: number;
  /** Files read and verified, and their bytes. */
  files: number;
  bytes: number;
  /** Files whose size or sha256 differed from the row, or that could not be read. */
  corrupt: number;
  /** Rows whose file was gone. */
  missing: number;
  /** Corrupt files moved to the quarantine. */
  quarantined: number;
}

/** The scrub run log (the serving node exports the last run). */
export interface ScrubsPart {
  /** Records a run; keeps the last 100. */
  record(run: ScrubRecord): Promise<void>;
  last(): Promise<ScrubRecord | null>;
}

/** A name claimed by an upload that the store has not confirmed yet. */
export interface PendingClaim {
  name: string;
  startedMs: number;
  /** The store's multipart upload id, once it gave one. */
  uploadId: string | null;
  /** The node (process) whose upload took it (docs/design.md §15); null: an index without node leases (SQLite) or a claim from before them. */
  nodeId: string | null;
  /** Until when that node's lease runs; null when it has none (it left, or its lease ended and its row was dropped). */
  leaseUntilMs: number | null;
}

/**
 * Create-only names for a store that has no create-only write: a name is
 * claimed before its upload starts, so a second upload of it is refused at
 * once. Claims left by a crash are found by their node's lease (a node that
 * died) or, without a node, by age.
 */
export interface ClaimsPart {
  /** Claims `name` for the upload of node `nodeId` (null: none); false when it is indexed (a stored file) or claimed already. */
  claim(name: string, nowMs: number, nodeId?: string | null): Promise<boolean>;
  get(name: string): Promise<PendingClaim | undefined>;
  setUploadId(name: string, uploadId: string): Promise<void>;
  /** Drops the claim (upload confirmed, then indexed; or cleaned up). */
  release(name: string): Promise<void>;
  /** Every claim, oldest first. */
  all(): Promise<PendingClaim[]>;
}

/** A name whose file was removed, with the checksum it was served with. */
export interface RetiredName {
  name: string;
  sha256: string;
  retiredMs: number;
}

/**
 * Retired pub names (docs/design.md §2): rows are written by FilesPart.remove
 * and removeMany; an upload restoring the same bytes drops its row.
 */
export interface RetiredPart {
  get(name: string): Promise<RetiredName | undefined>;
  /** Drops the row of a name (restored, or its retention is over); false when there was none. */
  drop(name: string): Promise<boolean>;
  /** Drops the rows retired at or before `atOrBeforeMs`; the number dropped. */
  prune(atOrBeforeMs: number): Promise<number>;
}

/** What a hold is checked against when it is taken or grows (null: not checked). */
export interface HoldLimits {
  /** Bytes the cluster may store and hold in all: the store's capacity minus its reserve. */
  roomBytes: number | null;
  /** The tenant's quota in the hold's class. */
  quotaBytes: number | null;
  /** limits.tenant.inflightUploads (checked when a hold is taken). */
  inflightUploads: number | null;
  /** limits.tenant.inflightBytes, in bytes. */
  inflightBytes: number | null;
}

/** A hold taken or grown, or which limit refused it and the figures of that refusal. */
export type HoldVerdict =
  | { ok: true }
  | { ok: false; limit: 'room' | 'quota' | 'inflightUploads' | 'inflightBytes'; usedBytes: number; heldBytes: number; uploads: number };

/** What the holds of live nodes add up to. */
export interface HeldTotals {
  uploads: number;
  bytes: number;
  /** Bytes held per class that has any. */
  byClass: Record<string, number>;
}

/**
 * Holds of uploads in flight on every node of a cluster (docs/design.md
 * §15): each admission and each growth is one transaction, serialized across
 * the cluster, that checks stored + held + the new bytes against the room
 * of the store, the tenant's quota and its in-flight limits, and writes the
 * hold only if all pass. A hold counts while its node's lease runs: a node
 * that dies stops holding within one lease, nobody has to remove its rows.
 */
export interface HoldsPart {
  /** This node is alive until `nowMs + leaseMs` (registers it the first time). */
  renewLease(nodeId: string, nowMs: number, leaseMs: number): Promise<void>;
  /** The node stops: its holds and its lease go at once. */
  leave(nodeId: string): Promise<void>;
  /** Takes a new hold of `bytes`, or grows hold `id` by `bytes` when it exists. */
  take(hold: { id: string; nodeId: string; tenant: string; cls: string; bytes: number }, limits: HoldLimits, nowMs: number): Promise<HoldVerdict>;
  /** Drops a hold (its upload is stored or gave up). */
  release(id: string): Promise<void>;
  /** Holds of live nodes: all, or one tenant's. */
  held(nowMs: number, tenant?: string): Promise<HeldTotals>;
  /** Drops the rows of nodes whose lease ended before `nowMs` (and their holds); how many nodes. */
  expire(nowMs: number): Promise<number>;
}

/** Who holds the cluster's eviction lock: the process (host and pid) and since when. */
export interface ClusterLockHolder {
  host: string;
  pid: number;
  sinceMs: number;
}

/** The cluster's eviction lock, held by this process until release(). */
export interface ClusterLock {
  /** Lets the lock go (idempotent); a holder that dies lets it go with its connection. */
  release(): Promise<void>;
}

/**
 * Eviction once for a cluster (docs/design.md §15): one run at a time on
 * every node and every cleanup command, and each scheduled tick run by one
 * node only.
 */
export interface ClusterEvictionPart {
  /** Takes the lock for one run (a session lock on a connection of its own), or null when another process holds it. */
  tryLock(holder: { host: string; pid: number }): Promise<ClusterLock | null>;
  /** The holder of the lock, null when it is free. */
  holder(): Promise<ClusterLockHolder | null>;
  /** True for exactly one caller per `tickMs` across the cluster (the one that runs that tick); old ticks are forgotten. */
  claimTick(tickMs: number, nodeId: string | null): Promise<boolean>;
}
