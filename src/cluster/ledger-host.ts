import type { Classifier } from '../classes.js';
import { HttpError, isHttpError } from '../errors.js';
import { classTenantKey, type AllowanceHold, type DecidingLedger, type DiskSpareHold, type SpareHold } from '../accounting/ledger.js';
import {
  DISK_SPARE_KEY, LEDGER_CALLS, type AdmitPayload, type Allowance, type ClaimPayload, type EndPayload, type GiveBackPayload, type GrantsPayload, type GrowPayload, type RecallPayload, type SparePayload, type TakePayload,
} from '../accounting/remote-ledger.js';
import type { IpcPeer } from './ipc.js';

interface HostedHold {
  hold: AllowanceHold;
  worker: number;
  /** The hold's last message still being worked on (a growth may wait for eviction): the next one waits for it. */
  busy: Promise<unknown>;
  /** A spare hold the worker keeps and no upload took yet (a tenant's, or a disk spare: `disk`). */
  spare: boolean;
  disk?: boolean;
}

/** After a recall, no spare is granted for this long: near a limit admissions are decided one by one. */
const SPARE_PAUSE_MS = 1_000;
/**
 * How long a recall waits for a worker (the admission waits meanwhile); a
 * stuck worker keeps its spares, and the refusal stands, on the safe side.
 * A worker that answers late still gives its spares back (its give-back
 * notice is not a reply, so it is never dropped).
 */
const RECALL_WAIT_MS = 5_000;

/**
 * The primary's side of the workers' ledgers (docs/design.md §14): one
 * DecidingLedger decides for every worker, so the disk reserve, quotas and
 * limits hold for the node as a whole; the holds of a worker that dies are
 * released at once.
 */
export class LedgerHost {
  private seq = 0;
  private readonly holds = new Map<number, HostedHold>();
  private readonly peers = new Map<number, IpcPeer>();
  private pausedUntilMs = -Infinity;
  /** Recalls started: spares granted across one are given back at once. */
  private recalls = 0;
  /** A recall of every spare under way (a tenant's recall is covered by it). */
  private recalling: Promise<number> | undefined;

  constructor(
    private readonly ledger: DecidingLedger,
    private readonly classifier: Classifier,
    private readonly options: { onRecall?: () => void; now?: () => number; recallWaitMs?: number } = {},
  ) {
    ledger.recallSparesWith?.((tenant) => this.recall(tenant));
  }

  /** Serves the ledger calls of one worker. */
  attach(peer: IpcPeer, worker: number): void {
    this.peers.set(worker, peer);
    peer
      .handle<AdmitPayload>(LEDGER_CALLS.admit, (p) => this.admit(worker, p))
      .handle<ClaimPayload>(LEDGER_CALLS.claim, (p) => this.claim(worker, p))
      .handle<GrowPayload>(LEDGER_CALLS.grow, (p) => this.grow(p))
      .handle<EndPayload>(LEDGER_CALLS.end, (p) => { this.end(p); })
      .handle<SparePayload>(LEDGER_CALLS.spare, (p) => { void this.grantSpares(worker, p); })
      .handle<TakePayload>(LEDGER_CALLS.take, (p) => { this.take(p); })
      .handle<GiveBackPayload>(LEDGER_CALLS.giveBack, (p) => { this.giveBack(p.ids); });
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private classOf(name: string) {
    const cls = this.classifier.classes.get(name) ?? this.classifier.classes.get('default');
    if (!cls) throw new HttpError('store_unavailable', `Storage class "${name}" is unknown to the primary; retry.`);
    return cls;
  }

  private async admit(worker: number, payload: AdmitPayload, disk?: DiskSpareHold): Promise<Allowance> {
    let hold: AllowanceHold;
    try {
      hold = await this.ledger.admit({ tenant: payload.tenant, cls: this.classOf(payload.cls), declaredBytes: payload.declaredBytes }, disk);
    } catch (err) {
      // Refused (or a class unknown here): the disk spare's room is free again (the ledger may have freed it already).
      disk?.release();
      throw err;
    }
    if (!this.peers.has(worker)) {
      // The worker died while this was decided: its upload is gone with it.
      hold.release();
      throw new Error(`worker ${worker} is gone`);
    }
    const id = ++this.seq;
    this.holds.set(id, { hold, worker, busy: Promise.resolve(), spare: false });
    return { id, allowance: hold.allowance };
  }

  /**
   * An upload the worker started on one of its disk spares: admitted on that
   * room (or refused, and the room is free again). A disk spare that is not
   * live (its worker died meanwhile): decided like any admission.
   */
  private claim(worker: number, payload: ClaimPayload): Promise<Allowance> {
    const hosted = this.holds.get(payload.id);
    let disk: DiskSpareHold | undefined;
    if (hosted?.spare && hosted.disk && hosted.worker === worker) {
      this.holds.delete(payload.id);
      disk = hosted.hold;
    }
    return this.admit(worker, payload, disk);
  }

  /**
   * Grants up to `count` spare holds of `bytes` while the ledger gives them,
   * and tells the worker which (always, maybe none, so that it may ask
   * again). The check for a recall meanwhile and the message are one
   * synchronous step: a recall either comes after the grants on the channel
   * (the worker gives them back) or has them given back here.
   */
  private async grantSpares(worker: number, payload: SparePayload): Promise<void> {
    const { ledger } = this;
    const granted: { id: number; hold: SpareHold | DiskSpareHold }[] = [];
    const since = this.recalls;
    let failed = false;
    try {
      const disk = classTenantKey(payload.tenant, payload.cls) === DISK_SPARE_KEY;
      const cls = disk ? undefined : this.classOf(payload.cls);
      const trySpare = disk
        ? ledger.tryDiskSpare && (() => ledger.tryDiskSpare!(payload.bytes))
        : ledger.trySpare && (() => ledger.trySpare!({ tenant: payload.tenant, cls: cls!, declaredBytes: payload.bytes }));
      for (let i = 0; trySpare && i < payload.count && this.now() >= this.pausedUntilMs; i++) {
        const hold = await trySpare();
        if (!hold) break;
        const id = ++this.seq;
        granted.push({ id, hold });
        this.holds.set(id, { hold, worker, busy: Promise.resolve(), spare: true, disk });
      }
    } catch {
      // Granting failed (a class unknown after a reload, the index): the worker gets none and may ask again.
      failed = true;
    }
    const peer = this.peers.get(worker);
    // A recall (or the worker's exit) while these were granted: the worker would not have given them back.
    const keep = !failed && this.recalls === since && peer !== undefined;
    if (!keep) this.giveBack(granted.map(({ id }) => id));
    const answer: GrantsPayload = { tenant: payload.tenant, cls: payload.cls, grants: keep ? granted.map(({ id, hold }) => ({ id, allowance: hold.allowance })) : [] };
    peer?.notify(LEDGER_CALLS.grants, answer);
  }

  private take(payload: TakePayload): void {
    for (const { id, declaredBytes } of payload.takes) {
      const hosted = this.holds.get(id);
      if (!hosted?.spare || hosted.disk) continue;
      hosted.spare = false;
      (hosted.hold as SpareHold).take(declaredBytes);
    }
  }

  /** Spares the worker gives back unused: released, their tokens given back. */
  private giveBack(ids: number[]): number {
    let released = 0;
    for (const id of ids) {
      const hosted = this.holds.get(id);
      if (!hosted?.spare) continue;
      this.holds.delete(id);
      hosted.hold.release();
      released++;
    }
    return released;
  }

  /**
   * Every worker gives back its spares, or a tenant's (an admission is
   * about to be refused); resolves to how many came back. After a recall of
   * all, no spare is granted for SPARE_PAUSE_MS; concurrent ones share one.
   */
  recall(tenant?: string): Promise<number> {
    this.recalls++;
    if (tenant === undefined) this.pausedUntilMs = this.now() + SPARE_PAUSE_MS;
    if (this.recalling) return this.recalling;
    this.options.onRecall?.();
    const payload: RecallPayload = { tenant };
    // Only workers that keep spares are asked (one that is starting could not answer yet).
    const keeping = new Set<number>();
    for (const hosted of this.holds.values()) if (hosted.spare) keeping.add(hosted.worker);
    const peers = [...this.peers].filter(([worker]) => keeping.has(worker)).map(([, peer]) => peer);
    // Each worker sends the ids in a give-back notice (handled before its answer, which says how many).
    const recalled = Promise.all(peers.map((peer) => peer.call<number>(LEDGER_CALLS.recall, payload, this.options.recallWaitMs ?? RECALL_WAIT_MS).catch(() => 0)))
      .then((answers) => answers.reduce((n, count) => n + count, 0));
    if (tenant !== undefined) return recalled;
    this.recalling = recalled.finally(() => { this.recalling = undefined; });
    return this.recalling;
  }

  private grow(payload: GrowPayload): Promise<Allowance> {
    const hosted = this.holds.get(payload.id);
    if (!hosted) return Promise.reject(new Error(`hold ${payload.id} is not live`));
    const growing = hosted.busy.then(async () => {
      const { hold } = hosted;
      if (payload.written > hold.written) await this.growOrRecall(hold, payload.written - hold.written);
      return { id: payload.id, allowance: hold.allowance };
    });
    hosted.busy = growing.catch(() => undefined);
    return growing;
  }

  /** A growth the disk or the quota refuses while spares are out is tried again once they are back. */
  private async growOrRecall(hold: AllowanceHold, bytes: number): Promise<void> {
    try {
      await hold.wrote(bytes);
    } catch (err) {
      const retry = isHttpError(err) && (err.code === 'insufficient_storage' || err.code === 'quota_exceeded') && (this.ledger.spareHolds ?? 0) > 0;
      if (!retry || (await this.recall()) === 0) throw err;
      await hold.wrote(bytes);
    }
  }

  private end(payload: EndPayload): void {
    const hosted = this.holds.get(payload.id);
    if (!hosted) return;
    this.holds.delete(payload.id);
    hosted.busy = hosted.busy.then(() => finish(hosted.hold, payload.written, payload.kept));
  }

  /** A worker exited: everything it held is free now, its spares too (its tmp files are swept by the caller); returns how many uploads' holds. */
  workerGone(worker: number): number {
    let released = 0;
    this.peers.delete(worker);
    for (const [id, hosted] of this.holds) {
      if (hosted.worker !== worker) continue;
      this.holds.delete(id);
      if (!hosted.spare) released++;
      hosted.busy = hosted.busy.then(() => hosted.hold.release());
    }
    return released;
  }

  /** Holds of live uploads, all workers (not the spares). */
  get size(): number {
    let uploads = 0;
    for (const hosted of this.holds.values()) if (!hosted.spare) uploads++;
    return uploads;
  }
}

/** Counts the bytes the worker wrote since its last message (within the allowance: never grows), then ends the hold. */
function finish(hold: AllowanceHold, written: number, kept: boolean): void {
  try {
    // Within the allowance wrote() never grows (synchronous, cannot refuse); a release after bytes were written makes the guard re-read the disk.
    if (written > hold.written && written <= hold.allowance) void hold.wrote(written - hold.written);
  } finally {
    if (kept) hold.commit();
    else hold.release();
  }
}
