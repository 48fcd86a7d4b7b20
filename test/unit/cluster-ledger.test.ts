import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Classifier } from '../../src/classes.js';
import { DiskGuard } from '../../src/disk/disk-guard.js';
import { HttpError } from '../../src/errors.js';
import { LocalLedger } from '../../src/accounting/local-ledger.js';
import { DISK_SPARES_PER_WORKER, LEDGER_CALLS, RemoteLedger, SPARE_IDLE_MS, SPARES_PER_KEY } from '../../src/accounting/remote-ledger.js';
import type { TenantLimits } from '../../src/accounting/tenant-rates.js';
import { IpcPeer, type Port } from '../../src/cluster/ipc.js';
import { LedgerHost } from '../../src/cluster/ledger-host.js';
import { silentLogger } from '../../src/logger.js';
import { seededRandom } from '../helpers/seeded-random.js';

/**
 * The ledger of a clustered node (docs/design.md §14) without processes:
 * workers' RemoteLedgers talk to the primary's LedgerHost over a pair of
 * in-memory ports that deliver asynchronously, in order, like IPC does.
 */

const MiB = 1 << 20;

/** Holds back what a worker sends while `held` (a busy worker); release() delivers it, in order. */
class Gate {
  held = false;
  private readonly queue: (() => void)[] = [];
  pass(deliver: () => void): void {
    if (this.held) this.queue.push(deliver);
    else deliver();
  }
  release(): void {
    this.held = false;
    for (const deliver of this.queue.splice(0)) deliver();
  }
}

/**
 * Two connected ports that deliver as node's IPC channel does: JSON copies,
 * in order, on a later turn; what arrives together is emitted in one go
 * (one process.nextTick each, so no promise callback runs between them).
 * `sent` logs the second port's messages by type; `toFirst` holds back what
 * the second port sends, `toSecond` what the first sends.
 */
function portPair(sent: string[] = [], toFirst = new Gate(), toSecond = new Gate()): [Port, Port] {
  const a = new EventEmitter();
  const b = new EventEmitter();
  const channel = (to: EventEmitter) => {
    const arrived: unknown[] = [];
    return (message: unknown) => {
      if (arrived.push(JSON.parse(JSON.stringify(message))) === 1) {
        setImmediate(() => { for (const m of arrived.splice(0)) process.nextTick(() => to.emit('message', m)); });
      }
    };
  };
  const [toA, toB] = [channel(a), channel(b)];
  return [
    { send: (message) => { toSecond.pass(() => toB(message)); return true; }, on: (event, listener) => a.on(event, listener) },
    { send: (message) => { sent.push((message as { type?: string }).type ?? 'reply'); toFirst.pass(() => toA(message)); return true; }, on: (event, listener) => b.on(event, listener) },
  ];
}

const NO_LIMITS: TenantLimits = { uploadsPerMinute: null, bytesPerMinute: null, inflightUploads: null, inflightBytes: null };

/** `diskSpares`: what each worker keeps (none unless asked: the tests of tenants' spares count every hold). */
function setup(options: {
  freeBytes?: number; quota?: string | null; limits?: Partial<TenantLimits>; diskSpares?: number;
  /** What the index says a tenant stores in a class (default: nothing). */
  storedBytes?: (tenant: string, cls: string) => Promise<number>;
} = {}) {
  const classifier = new Classifier({
    default: { match: [], evictable: false, maxAge: null, maxIdle: null, maxBytes: null, maxBytesPerTenant: null },
    quota: { match: ['*/*/q/**'], evictable: false, maxAge: null, maxIdle: null, maxBytes: null, maxBytesPerTenant: options.quota === null ? null : 10 * MiB },
  });
  const guard = new DiskGuard({
    readDisk: async () => ({ totalBytes: 1000 * MiB, freeBytes: options.freeBytes ?? 100 * MiB }),
    now: () => 0, logger: silentLogger(), minFreeBytes: 10 * MiB, minFreePercent: 0, highWatermarkPercent: 99, lowWatermarkPercent: 98,
  });
  /** Refusals told to monitoring. */
  const refusals = { throttled: 0, quota: 0 };
  const local = new LocalLedger({
    guard, now: () => 0, storedBytes: options.storedBytes ?? (async () => 0), makeRoom: async () => undefined,
    limits: () => ({ ...NO_LIMITS, ...options.limits }),
    observer: { throttled: () => { refusals.throttled++; }, quotaRefused: () => { refusals.quota++; } },
  });
  const host = new LedgerHost(local, classifier, { recallWaitMs: 50 });
  /** What each worker sent the primary, by message type; per worker, a gate on what it sends and one on what it receives. */
  const sent = new Map<number, string[]>();
  const gates = new Map<number, Gate>();
  const inbound = new Map<number, Gate>();
  const worker = (id: number) => {
    sent.set(id, []);
    gates.set(id, new Gate());
    inbound.set(id, new Gate());
    const [primaryEnd, workerEnd] = portPair(sent.get(id), gates.get(id), inbound.get(id));
    host.attach(new IpcPeer(primaryEnd), id);
    return new RemoteLedger(new IpcPeer(workerEnd), Date.now, options.diskSpares ?? 0);
  };
  const cls = (name: string) => classifier.classes.get(name)!;
  return { guard, local, host, worker, cls, sent, gates, inbound, refusals };
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

/**
 * Room for 90 MiB; worker 1's 10 MiB upload brings 16 MiB spares while
 * twice that fits: 4 of them (64 MiB), and 16 MiB of room is left.
 */
async function workerOneKeepsSpares() {
  const ctx = setup();
  const [w1, w2] = [ctx.worker(1), ctx.worker(2)];
  const small = await w1.admit({ tenant: 'a', cls: ctx.cls('default'), declaredBytes: 10 * MiB });
  await settle();
  expect(w1.spareHolds).toBe(4);
  expect(ctx.guard.headroomBytes()).toBe(16 * MiB);
  return { ...ctx, w1, w2, small };
}

describe('spare holds: admission in the worker, without a round trip', () => {
  afterEach(() => { vi.useRealTimers(); });

  it('a tenant\'s next upload takes a spare without asking the primary; the primary counts it in flight at its declared size', async () => {
    const { worker, local, guard, cls, sent } = setup();
    const w1 = worker(1);
    const first = await w1.admit({ tenant: 't', cls: cls('default'), declaredBytes: 1_600_000 });
    await settle();
    // Spares of 2 MiB (the next power of two) came back; they are not uploads in flight.
    expect(w1.spareHolds).toBe(SPARES_PER_KEY);
    expect(local.spareHolds).toBe(SPARES_PER_KEY);
    expect(local.inflightOf('t')).toEqual({ uploads: 1, bytes: 1_600_000, byClass: { default: 1_600_000 } });
    const admitsBefore = sent.get(1)!.filter((type) => type === LEDGER_CALLS.admit).length;

    let second: Awaited<ReturnType<typeof w1.admit>> | undefined;
    void w1.admit({ tenant: 't', cls: cls('default'), declaredBytes: 1_000_000 }).then((hold) => { second = hold; });
    // Resolved on this turn: no message had time to go anywhere and back.
    await Promise.resolve();
    await Promise.resolve();
    expect(second).toBeDefined();
    expect(sent.get(1)!.filter((type) => type === LEDGER_CALLS.admit)).toHaveLength(admitsBefore);
    await settle();
    // Taken: it shrank to what the upload declared, and counts as an upload in flight.
    expect(local.inflightOf('t')).toEqual({ uploads: 2, bytes: 2_600_000, byClass: { default: 2_600_000 } });
    second!.commit();
    first.commit();
    await settle();
    expect(local.inflightOf('t').uploads).toBe(0);
    // Only spares are held now: 2 MiB each, the one taken was replaced.
    expect(guard.snapshot().uploads).toBe(local.spareHolds);
  });

  it('never refuses for room a spare holds: the primary recalls the spares, then admits', async () => {
    const { local, cls, w1, w2, small } = await workerOneKeepsSpares();
    const big = await w2.admit({ tenant: 'b', cls: cls('default'), declaredBytes: 80 * MiB });
    expect(w1.spareHolds).toBe(0);
    expect(local.spareHolds).toBe(0);
    // Only what was really refusable is: nothing more fits now.
    await expect(w2.admit({ tenant: 'b', cls: cls('default'), declaredBytes: MiB })).rejects.toMatchObject({ code: 'insufficient_storage' });
    big.release();
    small.release();
  });

  it('a worker that answers a recall too late keeps nothing: its spares come back when its give-back arrives', async () => {
    const { local, cls, gates, w1, w2, small } = await workerOneKeepsSpares();
    // Worker 1 is too busy to answer within the recall's wait: the refusal stands, on the safe side.
    gates.get(1)!.held = true;
    await expect(w2.admit({ tenant: 'b', cls: cls('default'), declaredBytes: 80 * MiB })).rejects.toMatchObject({ code: 'insufficient_storage' });
    expect(w1.spareHolds).toBe(0);
    // Its late answer still returns what it gave up: nothing stays held for spares nobody has.
    gates.get(1)!.release();
    await settle();
    expect(local.spareHolds).toBe(0);
    await expect(w2.admit({ tenant: 'b', cls: cls('default'), declaredBytes: 80 * MiB })).resolves.toBeDefined();
    small.release();
  });

  it('a grant and a recall that reach the worker together: the spares are kept first, then all given back', async () => {
    const { worker, local, cls, inbound } = setup();
    const [w1, w2] = [worker(1), worker(2)];
    const first = await w1.admit({ tenant: 'a', cls: cls('default'), declaredBytes: MiB });
    await settle();
    expect(w1.spareHolds).toBe(SPARES_PER_KEY);
    // What the primary sends worker 1 from now on is held back: the grant that replaces the spare its next upload takes.
    inbound.get(1)!.held = true;
    const second = await w1.admit({ tenant: 'a', cls: cls('default'), declaredBytes: MiB });
    await settle();
    expect(local.spareHolds).toBe(SPARES_PER_KEY);
    // 2 MiB of uploads and 16 MiB of spares: 88 MiB fits only with every spare back, so the primary recalls them.
    const big = w2.admit({ tenant: 'b', cls: cls('default'), declaredBytes: 88 * MiB });
    await settle();
    // The grant and the recall arrive in one read, as node's channel delivers what it read at once.
    inbound.get(1)!.release();
    await expect(big).resolves.toBeDefined();
    expect(w1.spareHolds).toBe(0);
    expect(local.spareHolds).toBe(0);
    first.release();
    second.release();
  });

  it('never cuts a growing chunked upload for room a spare holds', async () => {
    const { local, cls, w2, small } = await workerOneKeepsSpares();
    // 16 MiB of room is left beside the spares; this upload grows to 40 MiB in 1 MiB steps.
    const chunked = await w2.admit({ tenant: 'b', cls: cls('default'), declaredBytes: null });
    for (let i = 0; i < 40; i++) await chunked.wrote(MiB);
    expect(chunked.written).toBe(40 * MiB);
    expect(local.spareHolds).toBe(0);
    chunked.commit();
    small.release();
  });

  it('uploadsPerMinute counts uploads, not spares: across two workers exactly the limit is admitted; only that tenant\'s spares are recalled', async () => {
    const { worker, local, cls, refusals } = setup({ limits: { uploadsPerMinute: 5 } });
    const [w1, w2] = [worker(1), worker(2)];
    // Another tenant's spares, far from its limits: they stay where they are.
    (await w2.admit({ tenant: 'other', cls: cls('default'), declaredBytes: MiB })).commit();
    await settle();
    const otherSpares = w2.spareHolds;
    expect(otherSpares).toBeGreaterThan(0);
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) {
      const w = i % 3 === 0 ? w2 : w1;
      outcomes.push(await w.admit({ tenant: 't', cls: cls('default'), declaredBytes: MiB }).then((hold) => { hold.commit(); return 'admitted'; }, (err: HttpError) => err.code));
      await settle();
    }
    expect(outcomes).toEqual([...Array<string>(5).fill('admitted'), 'rate_limited', 'rate_limited', 'rate_limited']);
    // Each refusal told once, though each was decided twice (quietly while spares were out, then for good).
    expect(refusals.throttled).toBe(3);
    expect(local.spareHolds).toBe(otherSpares);
    expect(w2.spareHolds).toBe(otherSpares);
  });

  it('gives back spares left unused for SPARE_IDLE_MS, and their tokens with them', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    // 20 uploads a minute (the ledger's clock stands still: no refill): one upload, then 16 spares while 2 more fit.
    const { worker, local, guard, cls } = setup({ limits: { uploadsPerMinute: 20 } });
    const [w1, w2] = [worker(1), worker(2)];
    (await w1.admit({ tenant: 't', cls: cls('default'), declaredBytes: MiB })).commit();
    await settle();
    expect(w1.spareHolds).toBe(SPARES_PER_KEY);
    vi.advanceTimersByTime(SPARE_IDLE_MS * 2);
    await settle();
    expect(w1.spareHolds).toBe(0);
    expect(local.spareHolds).toBe(0);
    expect(guard.snapshot().uploads).toBe(0);
    // Their tokens came back: the other 19 of the minute's uploads are admitted, the 21st is not.
    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) {
      outcomes.push(await w2.admit({ tenant: 't', cls: cls('default'), declaredBytes: MiB }).then((hold) => { hold.commit(); return 'admitted'; }, (err: HttpError) => err.code));
      await settle();
    }
    expect(outcomes).toEqual([...Array<string>(19).fill('admitted'), 'rate_limited']);
  });

  it('a tenant the primary grants no spare is not asked for again at every upload (near its limits, or a ledger that gives none)', async () => {
    // 1.5 MiB in flight: a spare of 1 MiB needs room for 2 MiB, so none is ever granted; uploads of 1 MiB one by one are admitted.
    const { worker, cls, sent } = setup({ limits: { inflightBytes: { bytes: 1.5 * MiB } } });
    const w1 = worker(1);
    for (let i = 0; i < 5; i++) {
      (await w1.admit({ tenant: 't', cls: cls('default'), declaredBytes: MiB })).commit();
      await settle();
    }
    expect(w1.spareHolds).toBe(0);
    // One request, answered with none; the next uploads did not ask again.
    expect(sent.get(1)!.filter((type) => type === LEDGER_CALLS.spare)).toHaveLength(1);
    expect(sent.get(1)!.filter((type) => type === LEDGER_CALLS.admit)).toHaveLength(5);
  });

  it('releases the spares of a worker that is gone with its uploads\' holds', async () => {
    const { worker, local, host, guard, cls } = setup();
    const w1 = worker(1);
    await w1.admit({ tenant: 't', cls: cls('default'), declaredBytes: MiB });
    await settle();
    expect(local.spareHolds).toBe(SPARES_PER_KEY);
    expect(host.workerGone(1)).toBe(1);
    await settle();
    expect(local.spareHolds).toBe(0);
    expect(guard.snapshot().uploads).toBe(0);
  });
});

describe('disk spares: the first upload of a tenant admitted in the worker', () => {
  const setupDisk = (options: Parameters<typeof setup>[0] = {}) => setup({ diskSpares: DISK_SPARES_PER_WORKER, ...options });
  const claims = (sent: Map<number, string[]>, worker: number) => sent.get(worker)!.filter((type) => type === LEDGER_CALLS.claim).length;
  const admits = (sent: Map<number, string[]>, worker: number) => sent.get(worker)!.filter((type) => type === LEDGER_CALLS.admit).length;

  it('a tenant the worker has nothing of starts at once on a disk spare; the primary admits it meanwhile, and the body\'s end waits for that', async () => {
    const { worker, local, guard, cls, sent } = setupDisk();
    const w1 = worker(1);
    (await w1.admit({ tenant: 'a', cls: cls('default'), declaredBytes: 1_500_000 })).release();
    await settle();
    // Tenant a's spares, and as many disk spares for anyone (2 MiB each: uploads of about that size).
    expect(local.spareHolds).toBe(SPARES_PER_KEY + DISK_SPARES_PER_WORKER);
    expect(admits(sent, 1)).toBe(1);

    let hold: Awaited<ReturnType<typeof w1.admit>> | undefined;
    void w1.admit({ tenant: 'b', cls: cls('default'), declaredBytes: 1_600_000 }).then((h) => { hold = h; });
    await Promise.resolve();
    await Promise.resolve();
    // Admitted on this turn, without asking the primary first.
    expect(hold).toBeDefined();
    expect(admits(sent, 1)).toBe(1);
    // Its bytes are counted at once; the end of its body (the write path) waits for the primary's admission.
    expect(hold!.wrote(1_000_000)).toBeUndefined();
    expect(hold!.wrote(600_000)).toBeUndefined();
    const decided = hold!.decided!();
    expect(decided).toBeInstanceOf(Promise);
    await decided;
    expect(hold!.decided!()).toBeUndefined();
    expect(hold!.written).toBe(1_600_000);
    // It was told afterwards (a claim: the primary's admission on the disk spare's room).
    expect(claims(sent, 1)).toBe(1);
    expect(admits(sent, 1)).toBe(1);
    // The primary holds it as tenant b's upload, on the disk spare's room.
    expect(local.inflightOf('b')).toEqual({ uploads: 1, bytes: 1_600_000, byClass: { default: 1_600_000 } });
    hold!.commit();
    await settle();
    expect(local.inflightOf('b').uploads).toBe(0);
    // Only spares hold room now (the disk spare taken was replaced, and tenant b got its own).
    expect(guard.snapshot().uploads).toBe(local.spareHolds);
  });

  it('a refusal by the primary fails the upload before anything is stored; the room is free, and the tenant\'s next upload is decided first', async () => {
    const { worker, local, guard, cls, refusals } = setupDisk({ limits: { inflightUploads: 1 } });
    const [w1, w2] = [worker(1), worker(2)];
    (await w1.admit({ tenant: 'a', cls: cls('default'), declaredBytes: MiB })).release();
    await settle();
    // Tenant b's one upload in flight, through worker 2.
    const other = await w2.admit({ tenant: 'b', cls: cls('default'), declaredBytes: MiB });
    await settle();
    const spares = local.spareHolds;
    // Worker 1 has nothing of b: its upload starts on a disk spare, and fails with the primary's 429 (its next bytes too).
    const hold = await w1.admit({ tenant: 'b', cls: cls('default'), declaredBytes: MiB });
    expect(hold.wrote(MiB - 1)).toBeUndefined();
    await expect(hold.decided!()).rejects.toMatchObject({ code: 'rate_limited' });
    expect(() => hold.wrote(1)).toThrow(expect.objectContaining({ code: 'rate_limited' }));
    hold.release();
    await settle();
    expect(local.inflightOf('b').uploads).toBe(1);
    // The disk spare's room was freed with the refusal, and worker 1 got another.
    expect(local.spareHolds).toBe(spares);
    expect(guard.snapshot().uploads).toBe(spares + 1);
    // Refused lately: b's next upload through worker 1 is refused before its body.
    await expect(w1.admit({ tenant: 'b', cls: cls('default'), declaredBytes: MiB })).rejects.toMatchObject({ code: 'rate_limited' });
    expect(refusals.throttled).toBe(2);
    other.release();
  });

  it('never refuses for room a disk spare holds: the primary recalls them, then admits', async () => {
    const { worker, local, cls } = setupDisk();
    const [w1, w2] = [worker(1), worker(2)];
    (await w1.admit({ tenant: 'a', cls: cls('default'), declaredBytes: MiB })).release();
    await settle();
    expect(local.spareBytes).toBe((SPARES_PER_KEY + DISK_SPARES_PER_WORKER) * MiB);
    // 90 MiB of room, 24 of it in spares (8 of them disk spares): 89 MiB fits only with all of them back.
    const big = await w2.admit({ tenant: 'b', cls: cls('default'), declaredBytes: 89 * MiB });
    expect(w1.spareHolds).toBe(0);
    expect(local.spareHolds).toBe(0);
    big.release();
  });

  it('a worker that dies frees at once the room of its disk spares and of the uploads it started on them, a claim still under way included', async () => {
    const { worker, local, host, guard, cls, gates } = setupDisk();
    const w1 = worker(1);
    (await w1.admit({ tenant: 'a', cls: cls('default'), declaredBytes: MiB })).release();
    await settle();
    const decided = await w1.admit({ tenant: 'b', cls: cls('default'), declaredBytes: MiB });
    await settle();
    expect(local.inflightOf('b').uploads).toBe(1);
    // The claim of tenant c's upload leaves the worker after its death.
    gates.get(1)!.held = true;
    await w1.admit({ tenant: 'c', cls: cls('default'), declaredBytes: MiB });
    expect(host.workerGone(1)).toBe(1);
    gates.get(1)!.release();
    await settle();
    expect(local.spareHolds).toBe(0);
    expect(local.inflightUploads).toBe(0);
    expect(guard.snapshot().uploads).toBe(0);
    decided.release();
  });

  it('a tenant with an upload in flight in the worker, an upload of unknown size or too big, and one whose client waits for 100 Continue are decided by the primary first', async () => {
    const { worker, local, cls, sent } = setupDisk();
    const w1 = worker(1);
    const a = await w1.admit({ tenant: 'a', cls: cls('default'), declaredBytes: 50 * MiB });
    await settle();
    expect(claims(sent, 1)).toBe(0);
    // 50 MiB is too big for spares of any kind: none were asked for.
    const chunked = await w1.admit({ tenant: 'b', cls: cls('default'), declaredBytes: null });
    const more = await w1.admit({ tenant: 'a', cls: cls('default'), declaredBytes: MiB });
    await settle();
    // Disk spares of 1 MiB are there, and tenant c is new to the worker: only its Expect keeps it off them.
    expect(local.spareHolds).toBe(SPARES_PER_KEY + DISK_SPARES_PER_WORKER);
    const waiting = await w1.admit({ tenant: 'c', cls: cls('default'), declaredBytes: MiB, decideBeforeBody: true });
    expect(claims(sent, 1)).toBe(0);
    expect(admits(sent, 1)).toBe(4);
    for (const hold of [a, chunked, more, waiting]) hold.release();
  });
});

describe('random workloads over three workers: the ledger\'s invariants hold at every step', () => {
  /** Many tenants, so that many uploads are of a tenant new to their worker (disk spares), and each with a 10 MiB quota soon full. */
  const TENANTS = Array.from({ length: 12 }, (_, i) => `t${i}`);
  /** Messages telling the primary of admissions on spares, over all seeds: claims (disk spares) and takes (tenants' spares). */
  const onSpares = { disk: 0, tenant: 0 };
  it.each([1, 2, 3, 4, 5])('seed %i: the reserve never overdrawn, no quota passed by what is stored, nothing held at the end (dead workers, aborts and refusals included)', async (seed) => {
    const next = seededRandom(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
    /** What is stored (committed) per tenant in the quota class: the index the ledger reads. */
    const stored = new Map<string, number>();
    const { worker, local, host, guard, cls, sent } = setup({
      diskSpares: DISK_SPARES_PER_WORKER,
      // Room for 890 MiB: most of the run fits, its end fills the disk.
      freeBytes: 900 * MiB,
      limits: { inflightUploads: 12 },
      storedBytes: async (tenant, name) => (name === 'quota' ? stored.get(tenant) ?? 0 : 0),
    });
    const workers = [worker(1), worker(2), worker(3)];
    const alive = new Set([0, 1, 2]);
    const outcomes = new Map<string, number>();
    const count = (outcome: string) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    const checkReserve = () => {
      const snap = guard.snapshot();
      // free − what uploads and spares hold ≥ the reserve (the guard's figures; the disk itself never changes here).
      expect(snap.freeBytes - snap.reservedBytes).toBeGreaterThanOrEqual(snap.reserveBytes);
    };
    const upload = async (w: number, tenant: string, clsName: string, size: number | null, expectContinue: boolean) => {
      let hold;
      try {
        hold = await workers[w].admit({ tenant, cls: cls(clsName), declaredBytes: size, decideBeforeBody: expectContinue });
      } catch (err) {
        count((err as HttpError).code);
        return;
      }
      checkReserve();
      const total = size ?? Math.floor(next() * 3 * MiB);
      const abort = next() < 0.15;
      // A fast client's whole body is there at once: its end comes before any answer of the primary could.
      const fast = next() < 0.4;
      try {
        for (let sent = 0; sent < total;) {
          const chunk = Math.min(total - sent, 256 << 10);
          const growing = hold.wrote(chunk);
          if (growing) await growing;
          sent += chunk;
          checkReserve();
          if (!fast && next() < 0.3) await new Promise((resolve) => setImmediate(resolve));
          if (abort && sent > total / 2) throw new Error('client gone');
        }
        await hold.decided?.();
        if (clsName === 'quota') {
          // Stored only now: a refusal would have come before this line.
          stored.set(tenant, (stored.get(tenant) ?? 0) + hold.written);
          expect(stored.get(tenant)).toBeLessThanOrEqual(10 * MiB);
        }
        hold.commit();
        count('stored');
      } catch (err) {
        hold.release();
        count(err instanceof HttpError ? err.code : 'aborted');
      }
    };
    const running: Promise<void>[] = [];
    for (let op = 0; op < 400; op++) {
      if (next() < 0.004 && alive.size > 1) {
        // A worker dies: its uploads go on talking to a primary that forgot it; it gets no new ones.
        const dead = pick([...alive]);
        alive.delete(dead);
        host.workerGone(dead + 1);
      }
      const w = pick([...alive]);
      running.push(upload(w, pick(TENANTS), pick(['default', 'quota']), pick([64 << 10, MiB, 1_600_000, 1_600_000, 3 * MiB, 20 * MiB, null]), next() < 0.2));
      if (next() < 0.5) await new Promise((resolve) => setImmediate(resolve));
      if (next() < 0.05) await settle();
    }
    await Promise.all(running);
    await settle();
    // Every spare back (a recall of all, as before a refusal): nothing is held any more.
    await host.recall();
    await settle();
    checkReserve();
    expect(local.spareHolds).toBe(0);
    expect(local.inflightUploads).toBe(0);
    expect(guard.snapshot().uploads).toBe(0);
    for (const t of TENANTS) expect(local.inflightOf(t).uploads).toBe(0);
    // The workload reached what it is about: stored uploads and refusals (and, over all seeds, spares of both kinds: below).
    const sentOf = (type: string) => [1, 2, 3].reduce((n, id) => n + sent.get(id)!.filter((t) => t === type).length, 0);
    onSpares.disk += sentOf(LEDGER_CALLS.claim);
    onSpares.tenant += sentOf(LEDGER_CALLS.take);
    expect(outcomes.get('stored')).toBeGreaterThan(50);
    expect((outcomes.get('quota_exceeded') ?? 0) + (outcomes.get('insufficient_storage') ?? 0) + (outcomes.get('rate_limited') ?? 0)).toBeGreaterThan(0);
  });

  it('the seeds admitted uploads on disk spares and on tenants\' spares (how many depends on timing, so it is counted over all of them)', () => {
    expect(onSpares.disk).toBeGreaterThan(0);
    expect(onSpares.tenant).toBeGreaterThan(0);
  });
});
