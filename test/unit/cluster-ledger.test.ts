import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Classifier } from '../../src/classes.js';
import { DiskGuard } from '../../src/disk/disk-guard.js';
import { HttpError } from '../../src/errors.js';
import { LocalLedger } from '../../src/accounting/local-ledger.js';
import { RemoteLedger } from '../../src/accounting/remote-ledger.js';
import { IpcPeer, type Port } from '../../src/cluster/ipc.js';
import { LedgerHost } from '../../src/cluster/ledger-host.js';
import { silentLogger } from '../../src/logger.js';

/**
 * The ledger of a clustered node (docs/design.md §14) without processes:
 * workers' RemoteLedgers talk to the primary's LedgerHost over a pair of
 * in-memory ports that deliver asynchronously, in order, like IPC does.
 */

const MiB = 1 << 20;

/** Two connected ports: what one sends, the other receives on a later turn, in order. */
function portPair(): [Port, Port] {
  const a = new EventEmitter();
  const b = new EventEmitter();
  // JSON, as the cluster channel serializes.
  const send = (to: EventEmitter) => (message: unknown) => { const copy = JSON.parse(JSON.stringify(message)) as unknown; setImmediate(() => to.emit('message', copy)); return true; };
  return [
    { send: send(b), on: (event, listener) => a.on(event, listener) },
    { send: send(a), on: (event, listener) => b.on(event, listener) },
  ];
}

function setup(options: { freeBytes?: number; quota?: string | null } = {}) {
  const classifier = new Classifier({
    default: { match: [], evictable: false, maxAge: null, maxIdle: null, maxBytes: null, maxBytesPerTenant: null },
    quota: { match: ['*/*/q/**'], evictable: false, maxAge: null, maxIdle: null, maxBytes: null, maxBytesPerTenant: options.quota === null ? null : 10 * MiB },
  });
  const guard = new DiskGuard({
    readDisk: async () => ({ totalBytes: 1000 * MiB, freeBytes: options.freeBytes ?? 100 * MiB }),
    now: () => 0, logger: silentLogger(), minFreeBytes: 10 * MiB, minFreePercent: 0, highWatermarkPercent: 99, lowWatermarkPercent: 98,
  });
  const local = new LocalLedger({
    guard, now: () => 0, storedBytes: async () => 0, makeRoom: async () => undefined,
    limits: () => ({ uploadsPerMinute: null, bytesPerMinute: null, inflightUploads: null, inflightBytes: null }),
  });
  const host = new LedgerHost(local, classifier);
  const worker = (id: number) => {
    const [primaryEnd, workerEnd] = portPair();
    host.attach(new IpcPeer(primaryEnd), id);
    return new RemoteLedger(new IpcPeer(workerEnd));
  };
  const cls = (name: string) => classifier.classes.get(name)!;
  return { guard, local, host, worker, cls };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('IpcPeer', () => {
  it('answers calls, rebuilds HttpErrors with their code, details and headers, and times out an unanswered call', async () => {
    const [a, b] = portPair();
    const caller = new IpcPeer(a);
    new IpcPeer(b)
      .handle<number>('double', (n) => n * 2)
      .handle('refuse', () => { throw new HttpError('rate_limited', 'slow down', { limit: 'x' }, { 'Retry-After': '3' }); });
    expect(await caller.call<number>('double', 21)).toBe(42);
    const err = await caller.call('refuse').catch((e: unknown) => e) as HttpError;
    expect(err).toBeInstanceOf(HttpError);
    expect([err.code, err.status, err.message, err.details, err.headers]).toEqual(['rate_limited', 429, 'slow down', { limit: 'x' }, { 'Retry-After': '3' }]);
    await expect(caller.call('nobody-answers')).rejects.toThrow(/no handler/);
    const [c] = portPair();
    await expect(new IpcPeer(c).call('into-the-void', null, 20)).rejects.toThrow(/no answer within 20 ms/);
  });
});

describe('one ledger for the workers of a node', () => {
  it('holds the disk reserve for the node: two workers cannot overshoot together', async () => {
    // 100 MiB free, 10 MiB reserve: room for 90 MiB.
    const { worker, cls } = setup();
    const [w1, w2] = [worker(1), worker(2)];
    const attempts = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => (i % 2 ? w1 : w2).admit({ tenant: 't', cls: cls('default'), declaredBytes: 20 * MiB })));
    const admitted = attempts.filter((a) => a.status === 'fulfilled');
    expect(admitted).toHaveLength(4);
    for (const refused of attempts.filter((a) => a.status === 'rejected')) expect((refused.reason as HttpError).code).toBe('insufficient_storage');
  });

  it('counts a chunked upload locally within its allowance and asks the primary once per grow step; a commit makes it stored', async () => {
    const { worker, local, guard, cls } = setup();
    const ledger = worker(1);
    const hold = await ledger.admit({ tenant: 't', cls: cls('default'), declaredBytes: null });
    let asked = 0;
    for (let i = 0; i < 64; i++) {
      // 64 KiB chunks: 16 per 1 MiB step; the write path waits for a growth before the next chunk.
      const growing = hold.wrote(64 << 10);
      if (growing instanceof Promise) {
        asked++;
        await growing;
      }
    }
    // Growth waits for the primary: wrote() returned promises only at step boundaries.
    expect(asked).toBeGreaterThanOrEqual(3);
    expect(asked).toBeLessThanOrEqual(4);
    await settle();
    expect(local.inflightUploads).toBe(1);
    hold.commit();
    await settle();
    expect(local.inflightUploads).toBe(0);
    expect(guard.snapshot().uploads).toBe(0);
  });

  it('refuses growth past a quota with the primary\'s 507 quota_exceeded', async () => {
    const { worker, cls } = setup();
    const ledger = worker(1);
    const hold = await ledger.admit({ tenant: 't', cls: cls('quota'), declaredBytes: null });
    let err: unknown;
    try {
      for (let i = 0; i < 200 && err === undefined; i++) await hold.wrote(64 << 10);
    } catch (e) { err = e; }
    expect((err as HttpError).code).toBe('quota_exceeded');
    expect(hold.written).toBeLessThanOrEqual(10 * MiB);
    hold.release();
  });

  it('releases every hold of a worker that is gone, at once, and leaves the other worker\'s', async () => {
    const { worker, local, host, cls } = setup();
    const [w1, w2] = [worker(1), worker(2)];
    for (let i = 0; i < 3; i++) await w1.admit({ tenant: 'a', cls: cls('default'), declaredBytes: 10 * MiB });
    const kept = await w2.admit({ tenant: 'b', cls: cls('default'), declaredBytes: 10 * MiB });
    expect(local.inflightUploads).toBe(4);
    expect(host.workerGone(1)).toBe(3);
    await settle();
    expect(local.inflightUploads).toBe(1);
    expect(local.inflightOf('a').uploads).toBe(0);
    // The room they held is free: 80 MiB more fits beside the one left (90 MiB room).
    await expect(w2.admit({ tenant: 'b', cls: cls('default'), declaredBytes: 80 * MiB })).resolves.toBeDefined();
    kept.release();
  });

  it('an end that arrives while a growth waits is applied after it (nothing stays held)', async () => {
    const { worker, local, cls } = setup();
    const ledger = worker(1);
    const hold = await ledger.admit({ tenant: 't', cls: cls('default'), declaredBytes: null });
    const growing = hold.wrote(2 * MiB);
    expect(growing).toBeInstanceOf(Promise);
    hold.release();
    await (growing as Promise<void>).catch(() => undefined);
    await settle();
    expect(local.inflightUploads).toBe(0);
  });
});
