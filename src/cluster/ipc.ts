import { HttpError, type ErrorCode } from '../errors.js';

/** What carries messages between the primary and one worker: a cluster Worker, or `process` in the worker. */
export interface Port {
  send(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
}

type Handler = (payload: never) => unknown;

interface Call { nanocdn: 'call'; id: number; type: string; payload: unknown }
interface Notice { nanocdn: 'notice'; type: string; payload: unknown }
interface Reply { nanocdn: 'reply'; id: number; value?: unknown; error?: WireError }
type Envelope = Call | Notice | Reply;

/** An error as it crosses the channel: HttpErrors keep code, sentence, details and headers. */
interface WireError { message: string; code?: ErrorCode; details?: Record<string, unknown>; headers?: Record<string, string> }

/**
 * One end of the channel between the primary and a worker (docs/design.md
 * §14): calls that get an answer (the answer may be an HttpError, rebuilt on
 * the calling side) and notices that get none. Messages keep their order on
 * one channel; other messages on it (e.g. node's own) are left alone.
 */
export class IpcPeer {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  private readonly handlers = new Map<string, Handler>();
  private closedBy: Error | undefined;

  constructor(private readonly port: Port) {
    port.on('message', (message) => this.receive(message));
  }

  /** Answers calls (and notices) of `type`; what `handler` returns or throws goes back to the caller. */
  handle<P>(type: string, handler: (payload: P) => unknown): this {
    this.handlers.set(type, handler);
    return this;
  }

  /** Calls the other end; `timeoutMs` rejects a call left unanswered (a process that is starting or stuck). */
  call<T>(type: string, payload: unknown = null, timeoutMs?: number): Promise<T> {
    if (this.closedBy) return Promise.reject(this.closedBy);
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = <V>(fn: (value: V) => void) => (value: V) => {
        clearTimeout(timer);
        this.pending.delete(id);
        fn(value);
      };
      this.pending.set(id, { resolve: settle(resolve as (value: unknown) => void), reject: settle(reject) });
      if (timeoutMs !== undefined) timer = setTimeout(() => this.pending.get(id)?.reject(new Error(`"${type}" got no answer within ${timeoutMs} ms`)), timeoutMs);
      this.post({ nanocdn: 'call', id, type, payload });
    });
  }

  notify(type: string, payload: unknown = null): void {
    if (!this.closedBy) this.post({ nanocdn: 'notice', type, payload });
  }

  /** The other end is gone: calls waiting for it, and later ones, fail with `err`. */
  close(err: Error): void {
    this.closedBy ??= err;
    for (const waiting of this.pending.values()) waiting.reject(err);
    this.pending.clear();
  }

  private post(envelope: Envelope): void {
    try {
      this.port.send(envelope);
    } catch (err) {
      // The channel closed under us (the other process is exiting).
      this.close(err as Error);
    }
  }

  private receive(message: unknown): void {
    if (typeof message !== 'object' || message === null || !('nanocdn' in message)) return;
    const envelope = message as Envelope;
    if (envelope.nanocdn === 'reply') {
      const waiting = this.pending.get(envelope.id);
      if (!waiting) return;
      this.pending.delete(envelope.id);
      if (envelope.error) waiting.reject(fromWire(envelope.error));
      else waiting.resolve(envelope.value);
      return;
    }
    const handler = this.handlers.get(envelope.type);
    if (envelope.nanocdn === 'notice') {
      handler?.(envelope.payload as never);
      return;
    }
    const { id } = envelope;
    const answer = (value: unknown, error?: unknown) => {
      if (this.closedBy) return;
      this.post(error === undefined ? { nanocdn: 'reply', id, value } : { nanocdn: 'reply', id, error: toWire(error) });
    };
    if (!handler) {
      answer(undefined, new Error(`no handler for "${envelope.type}"`));
      return;
    }
    try {
      const result = handler(envelope.payload as never);
      if (result instanceof Promise) result.then((value) => answer(value), (err: unknown) => answer(undefined, err ?? new Error('rejected')));
      else answer(result);
    } catch (err) {
      answer(undefined, err ?? new Error('thrown'));
    }
  }
}

function toWire(err: unknown): WireError {
  if (err instanceof HttpError) return { message: err.message, code: err.code, details: err.details, headers: err.headers };
  return { message: err instanceof Error ? err.message : String(err) };
}

function fromWire(wire: WireError): Error {
  if (wire.code) return new HttpError(wire.code, wire.message, wire.details, wire.headers);
  return new Error(wire.message);
}
