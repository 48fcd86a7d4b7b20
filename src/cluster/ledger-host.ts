import type { Classifier } from '../classes.js';
import { HttpError } from '../errors.js';
import type { AllowanceHold, DecidingLedger } from '../accounting/ledger.js';
import { LEDGER_CALLS, type AdmitPayload, type Allowance, type EndPayload, type GrowPayload } from '../accounting/remote-ledger.js';
import type { IpcPeer } from './ipc.js';

interface HostedHold {
  hold: AllowanceHold;
  worker: number;
  /** The hold's last message still being worked on (a growth may wait for eviction): the next one waits for it. */
  busy: Promise<unknown>;
}

/**
 * The primary's side of the workers' ledgers (docs/design.md §14): one
 * DecidingLedger decides for every worker, so the disk reserve, quotas and
 * limits hold for the node as a whole; the holds of a worker that dies are
 * released at once.
 */
export class LedgerHost {
  private seq = 0;
  private readonly holds = new Map<number, HostedHold>();

  constructor(private readonly ledger: DecidingLedger, private readonly classifier: Classifier) {}

  /** Serves the ledger calls of one worker. */
  attach(peer: IpcPeer, worker: number): void {
    peer
      .handle<AdmitPayload>(LEDGER_CALLS.admit, (p) => this.admit(worker, p))
      .handle<GrowPayload>(LEDGER_CALLS.grow, (p) => this.grow(p))
      .handle<EndPayload>(LEDGER_CALLS.end, (p) => { this.end(p); });
  }

  private async admit(worker: number, payload: AdmitPayload): Promise<Allowance> {
    const cls = this.classifier.classes.get(payload.cls) ?? this.classifier.classes.get('default');
    if (!cls) throw new HttpError('store_unavailable', `Storage class "${payload.cls}" is unknown to the primary; retry.`);
    const hold = await this.ledger.admit({ tenant: payload.tenant, cls, declaredBytes: payload.declaredBytes });
    const id = ++this.seq;
    this.holds.set(id, { hold, worker, busy: Promise.resolve() });
    return { id, allowance: hold.allowance };
  }

  private grow(payload: GrowPayload): Promise<Allowance> {
    const hosted = this.holds.get(payload.id);
    if (!hosted) return Promise.reject(new Error(`hold ${payload.id} is not live`));
    const growing = hosted.busy.then(async () => {
      const { hold } = hosted;
      if (payload.written > hold.written) await hold.wrote(payload.written - hold.written);
      return { id: payload.id, allowance: hold.allowance };
    });
    hosted.busy = growing.catch(() => undefined);
    return growing;
  }

  private end(payload: EndPayload): void {
    const hosted = this.holds.get(payload.id);
    if (!hosted) return;
    this.holds.delete(payload.id);
    hosted.busy = hosted.busy.then(() => finish(hosted.hold, payload.written, payload.kept));
  }

  /** A worker exited: everything it held is free now (its tmp files are swept by the caller). */
  workerGone(worker: number): number {
    let released = 0;
    for (const [id, hosted] of this.holds) {
      if (hosted.worker !== worker) continue;
      this.holds.delete(id);
      released++;
      hosted.busy = hosted.busy.then(() => hosted.hold.release());
    }
    return released;
  }

  /** Holds of live uploads, all workers. */
  get size(): number {
    return this.holds.size;
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
