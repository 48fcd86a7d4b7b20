import { HttpError, isHttpError } from '../errors.js';
import { classTenantKey, tenantOfKey, type Hold, type HoldRequest, type Ledger, type TenantInflight } from './ledger.js';

/** The calls a RemoteLedger makes to the ledger that decides (the primary's, src/cluster/ledger-host.ts). */
export interface LedgerLink {
  call<T>(type: string, payload: unknown): Promise<T>;
  notify(type: string, payload: unknown): void;
  /** Answers the deciding ledger's calls (a recall of spare holds). */
  handle<P>(type: string, handler: (payload: P) => unknown): unknown;
}

/** What the deciding ledger answers to an admission or a growth: how far the upload may count without asking again. */
export interface Allowance {
  id: number;
  /** Bytes the hold covers now: disk reservation and quota hold, whichever is smaller. */
  allowance: number;
}

/** Messages of the ledger between a worker and the primary. */
export const LEDGER_CALLS = {
  admit: 'ledger.admit', grow: 'ledger.grow',
  /**
   * worker → primary: an upload was admitted on a disk spare (its tenant had
   * nothing in this worker); the answer is the primary's admission of it —
   * the hold, or the refusal the upload then fails with.
   */
  claim: 'ledger.claim',
  /** worker → primary (notice): a hold ended (sent at once, after the takes not yet told). */
  end: 'ledger.end',
  /** worker → primary (notice): spare holds wanted for a (tenant, class); the primary always answers with `grants`. */
  spare: 'ledger.spare',
  /**
   * primary → worker (notice): the spares granted (maybe none). A notice, not
   * the answer to a call: its handler keeps them at once, so a recall that
   * arrives in the same read finds them (an answer would be kept a promise
   * callback later, after the recall, and the spares would stay held for
   * nobody).
   */
  grants: 'ledger.grants',
  /** worker → primary (notice): uploads took spare holds (sent after the admission, batched, and before any other message about those holds). */
  take: 'ledger.take',
  /** worker → primary (notice): spare holds left unused, given back. */
  giveBack: 'ledger.give-back',
  /**
   * primary → worker: give back every spare hold now, or one tenant's (an
   * admission would be refused): their ids go in a give-back notice, the
   * answer says how many (a late answer is dropped, the notice never is).
   */
  recall: 'ledger.recall',
} as const;

export interface AdmitPayload { tenant: string; cls: string; declaredBytes: number | null }
export interface ClaimPayload extends AdmitPayload { id: number; declaredBytes: number }
export interface GrowPayload { id: number; written: number }
export interface EndPayload { id: number; written: number; kept: boolean }
export interface SparePayload { tenant: string; cls: string; bytes: number; count: number }
export interface GrantsPayload { tenant: string; cls: string; grants: Allowance[] }
export interface TakePayload { takes: { id: number; declaredBytes: number }[] }
export interface GiveBackPayload { ids: number[] }
export interface RecallPayload { tenant?: string }

/**
 * Spare holds a worker keeps per (tenant, class): a burst's admissions until
 * the primary's next grant arrives (at 2,000 admissions a second, 8 lasted
 * 4 ms, less than a busy primary of 4 workers on 2 cores sometimes took to
 * top them up: 1 % of a burst then asked the primary).
 */
export const SPARES_PER_KEY = 16;
/** Spare holds of tenants a worker keeps in all, and their bytes (its disk spares come beside). */
export const SPARES_PER_WORKER = 64;
const SPARE_BYTES_PER_WORKER = 256 << 20;
/** Bigger uploads take long enough that a round trip to the primary does not matter: no spares for them. */
const SPARE_MAX_BYTES = 16 << 20;
/** A spare hold unused this long goes back to the primary (so idle workers hold nothing). */
export const SPARE_IDLE_MS = 2_000;
/** The smallest spare hold: uploads below share one size. */
const SPARE_MIN_BYTES = 64 << 10;

/**
 * The key of a worker's disk spares: room held for an upload of any tenant
 * (no class name and no tenant name is empty). Asked for as the spares of
 * tenant '' in class ''; the primary tells them apart by this key.
 */
export const DISK_SPARE_KEY = classTenantKey('', '');
/** Disk spares a worker keeps: first uploads of tenants admitted in the worker until the primary's next grant arrives. */
export const DISK_SPARES_PER_WORKER = 8;
/** How long a tenant whose spares or admission were refused is decided by the primary before its upload starts. */
const NEAR_LIMITS_MS = SPARE_IDLE_MS;

/** The size of the spare holds for uploads of `declaredBytes`: the next power of two, so uploads of about one size share spares. */
export function spareBytesFor(declaredBytes: number): number {
  return Math.max(SPARE_MIN_BYTES, 2 ** Math.ceil(Math.log2(Math.max(1, declaredBytes))));
}

interface Spare { id: number; allowance: number; atMs: number }

/**
 * The ledger of a worker process (docs/design.md §14): every decision is
 * the primary's, so the disk reserve, quotas and limits hold for the node
 * as a whole. One message per admission (none on a spare, below) and one
 * per grow step (never per chunk): a hold counts bytes locally up to the
 * allowance the primary gave it. A worker that dies has its holds released
 * by the primary at once.
 *
 * Admission without a round trip: an upload with a Content-Length takes a
 * spare hold — one the primary admitted ahead for its (tenant, class) —
 * when one is big enough, and tells the primary afterwards; the worker then
 * asks for another in the background. The primary grants spares only far
 * from every limit and recalls them all before it refuses anything, so they
 * change how fast an admission is, never whether it is admitted.
 *
 * The first upload of a tenant this worker has nothing of (no upload in
 * flight, no spare, not near a limit) takes a disk spare instead: room the
 * primary held ahead for any tenant. Its body starts at once while the
 * primary admits it (limits, quota) on that room; the end of its body
 * waits for the verdict (Hold.decided()), and a refusal fails it before
 * anything is stored. So the
 * disk reserve always holds, a tenant's limits and quota hold for all it
 * stores, and the bytes a refused upload wrote in tmp were on held room.
 */
export class RemoteLedger implements Ledger {
  /** This worker's holds by tenant (the node-wide view is the primary's /usage). */
  private readonly tenants = new Map<string, TenantInflight>();
  /** Spare holds by (class, tenant). */
  private readonly spares = new Map<string, Spare[]>();
  private spareCount = 0;
  private spareBytes = 0;
  /** Keys with a request for spares under way. */
  private readonly asking = new Set<string>();
  private sweeper: NodeJS.Timeout | undefined;
  /** Told to the primary after the admissions of this turn: spares taken, and keys to top up. */
  private takes: TakePayload['takes'] = [];
  private claims: { claim: ClaimPayload; resolve: (granted: Allowance) => void; reject: (err: unknown) => void }[] = [];
  private readonly toAsk = new Map<string, SparePayload>();
  private flushQueued = false;
  /** Tenants refused spares or an admission lately (until when): not admitted on a disk spare. */
  private readonly nearLimits = new Map<string, number>();
  /** The primary granted no disk spare (the disk near its reserve, or a ledger that gives none): not asked again before then. */
  private noDiskSparesUntil = -Infinity;
  /** Told of each admission on a spare (monitoring counts them; set once the worker's metrics exist). */
  onSpareAdmission: (() => void) | undefined;

  constructor(
    private readonly link: LedgerLink,
    private readonly now: () => number = Date.now,
    /** Disk spares kept (0: none; every first upload of a tenant then asks the primary). */
    private readonly diskSpares = DISK_SPARES_PER_WORKER,
  ) {
    link.handle<GrantsPayload>(LEDGER_CALLS.grants, (p) => this.keep(p));
    link.handle<RecallPayload>(LEDGER_CALLS.recall, (p) => {
      const ids = this.giveUp(p.tenant);
      if (ids.length) this.link.notify(LEDGER_CALLS.giveBack, { ids } satisfies GiveBackPayload);
      return ids.length;
    });
  }

  async admit(request: HoldRequest): Promise<Hold> {
    const { tenant, cls, declaredBytes } = request;
    const key = classTenantKey(tenant, cls.name);
    const spareBytes = declaredBytes === null ? Infinity : spareBytesFor(declaredBytes);
    let granted: Allowance | undefined;
    let verdict: Promise<Allowance> | undefined;
    if (declaredBytes !== null && spareBytes <= SPARE_MAX_BYTES) {
      granted = this.takeSpare(key, declaredBytes);
      if (!granted && !request.decideBeforeBody && this.isStranger(tenant, key)) {
        const disk = this.pickSpare(DISK_SPARE_KEY, declaredBytes);
        if (disk) {
          const claim: ClaimPayload = { id: disk.id, tenant, cls: cls.name, declaredBytes };
          // Sent with this turn's other news (off the admission's path), before any message about the hold.
          verdict = new Promise((resolve, reject) => this.claims.push({ claim, resolve, reject }));
          granted = { id: -1, allowance: declaredBytes };
        }
      }
      // A tenant refused spares lately is not asked for again before NEAR_LIMITS_MS (nor is a ledger that gives none).
      if (!this.asking.has(key) && !this.isNear(tenant)) this.toAsk.set(key, { tenant, cls: cls.name, bytes: spareBytes, count: 0 });
      if (this.diskSpares > 0 && !this.asking.has(DISK_SPARE_KEY) && this.now() >= this.noDiskSparesUntil) this.toAsk.set(DISK_SPARE_KEY, { tenant: '', cls: '', bytes: spareBytes, count: 0 });
      this.queueFlush();
    }
    if (!granted) {
      const payload: AdmitPayload = { tenant, cls: cls.name, declaredBytes };
      granted = await this.link.call<Allowance>(LEDGER_CALLS.admit, payload).catch(unreachable);
    }
    const mine = this.tenants.get(request.tenant) ?? { uploads: 0, bytes: 0, byClass: {} };
    mine.uploads++;
    this.tenants.set(request.tenant, mine);
    const hold = new RemoteHold(this.link, granted, this, () => {
      if (--mine.uploads === 0) this.tenants.delete(request.tenant);
    });
    if (verdict) hold.awaitVerdict(verdict, () => this.markNear(tenant));
    return hold;
  }

  /**
   * Whether the tenant may start an upload on a disk spare: nothing of it in
   * this worker (an upload in flight or spares: those go through its own
   * spares and the primary) and not refused lately.
   */
  private isStranger(tenant: string, key: string): boolean {
    return !this.tenants.has(tenant) && !this.spares.has(key) && !this.asking.has(key) && !this.isNear(tenant);
  }

  /** Refused spares or an admission in the last NEAR_LIMITS_MS. */
  private isNear(tenant: string): boolean {
    const until = this.nearLimits.get(tenant);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.nearLimits.delete(tenant);
    return false;
  }

  inflightOf(tenant: string): TenantInflight {
    return this.tenants.get(tenant) ?? { uploads: 0, bytes: 0, byClass: {} };
  }

  /** Spare holds this worker keeps now. */
  get spareHolds(): number {
    return this.spareCount;
  }

  /** The smallest spare of the key that covers `declaredBytes`, told to the primary as taken; undefined when none does. */
  private takeSpare(key: string, declaredBytes: number): Allowance | undefined {
    const spare = this.pickSpare(key, declaredBytes);
    if (!spare) return undefined;
    this.takes.push({ id: spare.id, declaredBytes });
    return { id: spare.id, allowance: declaredBytes };
  }

  /** Removes and returns the smallest spare of the key that covers `declaredBytes`. */
  private pickSpare(key: string, declaredBytes: number): Spare | undefined {
    const list = this.spares.get(key);
    if (!list) return undefined;
    let best = -1;
    for (let i = 0; i < list.length; i++) {
      if (list[i].allowance >= declaredBytes && (best === -1 || list[i].allowance < list[best].allowance)) best = i;
    }
    if (best === -1) return undefined;
    const [spare] = list.splice(best, 1);
    if (list.length === 0) this.spares.delete(key);
    this.spareCount--;
    this.spareBytes -= spare.allowance;
    this.onSpareAdmission?.();
    return spare;
  }

  /**
   * @internal A hold ended: told to the primary at once, with what is
   * pending. Not deferred: the upload's row is in the index already and its
   * answer is about to leave, so a client's next upload through another
   * worker must not reach the primary first (it would count the file twice,
   * in the index and as held, and could be refused for room that is free).
   */
  ended(payload: EndPayload): void {
    this.flush();
    this.link.notify(LEDGER_CALLS.end, payload);
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => this.flush());
  }

  /**
   * Tells the primary which spares were taken (and which uploads started on
   * disk spares) and asks for more: after the admissions (off their path,
   * one message for all of a turn's takes), and before a hold says anything
   * else (its end must not come first).
   */
  flush(): void {
    this.flushQueued = false;
    if (this.takes.length) {
      const payload: TakePayload = { takes: this.takes };
      this.takes = [];
      this.link.notify(LEDGER_CALLS.take, payload);
    }
    if (this.claims.length) {
      for (const { claim, resolve, reject } of this.claims) this.link.call<Allowance>(LEDGER_CALLS.claim, claim).then(resolve, reject);
      this.claims = [];
    }
    for (const [key, ask] of this.toAsk) this.askForSpares(key, ask);
    this.toAsk.clear();
  }

  /** Tops the key's spares up to SPARES_PER_KEY in the background (one request per key at a time; the primary may grant none). */
  private askForSpares(key: string, ask: SparePayload): void {
    const have = this.spares.get(key)?.length ?? 0;
    // Disk spares have their own count, beside the tenants' spares (which may be many tenants' few).
    const disk = this.spares.get(DISK_SPARE_KEY) ?? [];
    const count = key === DISK_SPARE_KEY ? this.diskSpares - have : Math.min(SPARES_PER_KEY - have, SPARES_PER_WORKER - (this.spareCount - disk.length),
      Math.floor((SPARE_BYTES_PER_WORKER - this.spareBytes + disk.reduce((sum, s) => sum + s.allowance, 0)) / ask.bytes));
    if (count <= 0 || this.asking.has(key)) return;
    this.asking.add(key);
    const payload: SparePayload = { ...ask, count };
    this.link.notify(LEDGER_CALLS.spare, payload);
  }

  /** The primary's answer to a request for spares. */
  private keep({ tenant, cls, grants }: GrantsPayload): void {
    const key = classTenantKey(tenant, cls);
    this.asking.delete(key);
    if (grants.length === 0) {
      // Near a limit (or the disk near its reserve): its next upload is decided before its body starts.
      if (key === DISK_SPARE_KEY) this.noDiskSparesUntil = this.now() + NEAR_LIMITS_MS;
      else this.markNear(tenant);
      return;
    }
    const atMs = this.now();
    const list = this.spares.get(key) ?? [];
    for (const g of grants) {
      list.push({ id: g.id, allowance: g.allowance, atMs });
      this.spareBytes += g.allowance;
    }
    this.spares.set(key, list);
    this.spareCount += grants.length;
    this.sweeper ??= setInterval(() => this.giveBackIdle(), SPARE_IDLE_MS / 2).unref();
  }

  private markNear(tenant: string): void {
    this.nearLimits.set(tenant, this.now() + NEAR_LIMITS_MS);
    this.sweeper ??= setInterval(() => this.giveBackIdle(), SPARE_IDLE_MS / 2).unref();
  }

  /** Spares unused for SPARE_IDLE_MS go back to the primary (and tenants near a limit are forgotten after NEAR_LIMITS_MS). */
  private giveBackIdle(): void {
    const now = this.now();
    for (const [tenant, until] of this.nearLimits) if (until <= now) this.nearLimits.delete(tenant);
    const before = now - SPARE_IDLE_MS;
    const ids: number[] = [];
    for (const [key, list] of this.spares) {
      const idle = list.filter((s) => s.atMs <= before);
      if (idle.length === 0) continue;
      for (const s of idle) {
        ids.push(s.id);
        this.spareBytes -= s.allowance;
      }
      if (idle.length === list.length) this.spares.delete(key);
      else this.spares.set(key, list.filter((s) => s.atMs > before));
    }
    this.spareCount -= ids.length;
    if (ids.length) {
      const payload: GiveBackPayload = { ids };
      this.link.notify(LEDGER_CALLS.giveBack, payload);
    }
    if (this.spareCount === 0 && this.nearLimits.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** The primary recalls every spare, or a tenant's: none of them is taken after this answer. */
  private giveUp(tenant: string | undefined): number[] {
    const ids: number[] = [];
    for (const [key, list] of this.spares) {
      if (tenant !== undefined && tenantOfKey(key) !== tenant) continue;
      for (const s of list) {
        ids.push(s.id);
        this.spareBytes -= s.allowance;
      }
      this.spareCount -= list.length;
      this.spares.delete(key);
    }
    return ids;
  }
}

class RemoteHold implements Hold {
  written = 0;
  private allowance: number;
  private finished = false;
  private kept = false;
  private id: number;
  /** Admitted on a disk spare: the primary's admission, until it arrives (decided() waits for it). */
  private verdict: Promise<void> | undefined;
  /** The primary refused it: every later byte fails with this. */
  private refusal: HttpError | undefined;

  constructor(private readonly link: LedgerLink, granted: Allowance, private readonly ledger: RemoteLedger, private readonly onEnd: () => void) {
    this.id = granted.id;
    this.allowance = granted.allowance;
  }

  /** @internal Admitted on a disk spare: `verdict` is the primary's admission (its hold id), or its refusal (decided() waits for it). */
  awaitVerdict(verdict: Promise<Allowance>, onRefused: () => void): void {
    this.verdict = verdict.then((granted) => {
      this.verdict = undefined;
      this.id = granted.id;
      // Ended meanwhile (aborted): told now that the primary knows it.
      if (this.finished) this.ledger.ended({ id: this.id, written: this.written, kept: this.kept });
    }, (err: unknown) => {
      this.verdict = undefined;
      this.refusal = isHttpError(err) ? err : toUnreachable(err);
      onRefused();
    });
  }

  decided(): void | Promise<void> {
    if (this.refusal) throw this.refusal;
    return this.verdict?.then(() => this.decided());
  }

  wrote(bytes: number): void | Promise<void> {
    if (this.finished) throw new Error('bytes written after the hold was finished');
    // Refused by the primary while its body came: the upload fails at its next bytes.
    if (this.refusal) throw this.refusal;
    const written = this.written + bytes;
    // Growth (never on a disk spare: a declared length) asks the primary, which must have decided first.
    if (this.verdict && written > this.allowance) return this.verdict.then(() => this.wrote(bytes));
    if (written <= this.allowance) {
      this.written = written;
      return;
    }
    // What the primary has not been told yet goes first (a take of this hold).
    this.ledger.flush();
    const payload: GrowPayload = { id: this.id, written };
    return this.link.call<Allowance>(LEDGER_CALLS.grow, payload).catch(unreachable).then((granted) => {
      if (this.finished) throw new Error('bytes written after the hold was finished');
      this.allowance = granted.allowance;
      this.written = written;
    });
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
    this.kept = kept;
    this.onEnd();
    // Refused: the primary holds nothing of it. Awaiting its verdict: told when it arrives.
    if (this.refusal || this.verdict) return;
    this.ledger.ended({ id: this.id, written: this.written, kept });
  }
}

/** A refusal stays what it is; a channel that failed (the primary is gone or stopping) is a 503 the client may retry. */
function unreachable(err: unknown): never {
  if (isHttpError(err)) throw err;
  throw toUnreachable(err);
}

function toUnreachable(err: unknown): HttpError {
  return new HttpError('store_unavailable', `The node's primary process did not answer (${(err as Error).message}); nothing was stored. Retry.`);
}
