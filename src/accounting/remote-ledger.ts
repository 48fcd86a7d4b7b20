import { HttpError, isHttpError } from '../errors.js';
import type { Hold, HoldRequest, Ledger, TenantInflight } from './ledger.js';

/** The calls a RemoteLedger makes to the ledger that decides (the primary's, src/cluster/ledger-host.ts). */
export interface LedgerLink {
  call<T>(type: string, payload: unknown): Promise<T>;
  notify(type: string, payload: unknown): void;
}

/** What the deciding ledger answers to an admission or a growth: how far the upload may count without asking again. */
export interface Allowance {
  id: number;
  /** Bytes the hold covers now: disk reservation and quota hold, whichever is smaller. */
  allowance: number;
}

/** Messages of the ledger between a worker and the primary. */
export const LEDGER_CALLS = { admit: 'ledger.admit', grow: 'ledger.grow', end: 'ledger.end' } as const;

export interface AdmitPayload { tenant: string; cls: string; declaredBytes: number | null }
export interface GrowPayload { id: number; written: number }
export interface EndPayload { id: number; written: number; kept: boolean }

/**
 * The ledger of a worker process (docs/design.md §14): every decision is
 * the primary's, so the disk reserve, quotas and limits hold for the node
 * as a whole. One message per admission and one per grow step (never per
 * chunk): a hold counts bytes locally up to the allowance the primary gave
 * it. A worker that dies has its holds released by the primary at once.
 */
export class RemoteLedger implements Ledger {
  /** This worker's holds by tenant (the node-wide view is the primary's /usage). */
  private readonly tenants = new Map<string, TenantInflight>();

  constructor(private readonly link: LedgerLink) {}

  async admit(request: HoldRequest): Promise<Hold> {
    const payload: AdmitPayload = { tenant: request.tenant, cls: request.cls.name, declaredBytes: request.declaredBytes };
    const granted = await this.link.call<Allowance>(LEDGER_CALLS.admit, payload).catch(unreachable);
    const mine = this.tenants.get(request.tenant) ?? { uploads: 0, bytes: 0, byClass: {} };
    mine.uploads++;
    this.tenants.set(request.tenant, mine);
    return new RemoteHold(this.link, granted, () => {
      if (--mine.uploads === 0) this.tenants.delete(request.tenant);
    });
  }

  inflightOf(tenant: string): TenantInflight {
    return this.tenants.get(tenant) ?? { uploads: 0, bytes: 0, byClass: {} };
  }
}

class RemoteHold implements Hold {
  written = 0;
  private allowance: number;
  private finished = false;
  private readonly id: number;

  constructor(private readonly link: LedgerLink, granted: Allowance, private readonly onEnd: () => void) {
    this.id = granted.id;
    this.allowance = granted.allowance;
  }

  wrote(bytes: number): void | Promise<void> {
    if (this.finished) throw new Error('bytes written after the hold was finished');
    const written = this.written + bytes;
    if (written <= this.allowance) {
      this.written = written;
      return;
    }
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
    this.onEnd();
    const payload: EndPayload = { id: this.id, written: this.written, kept };
    this.link.notify(LEDGER_CALLS.end, payload);
  }
}

/** A refusal stays what it is; a channel that failed (the primary is gone or stopping) is a 503 the client may retry. */
function unreachable(err: unknown): never {
  if (isHttpError(err)) throw err;
  throw new HttpError('store_unavailable', `The node's primary process did not answer (${(err as Error).message}); nothing was stored. Retry.`);
}
