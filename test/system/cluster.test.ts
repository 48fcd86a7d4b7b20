import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricSample, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { rawSocket, type RawSocket } from '../helpers/raw-socket.js';
import { readIndexOf } from '../helpers/index-file.js';
import { canMountTmpfs, mountTmpfs, requirement, type Tmpfs } from '../helpers/system-tools.js';
import { pause, rawRequest } from '../http/raw-http.js';
import { NODE_FLAGS } from '../../src/node-flags.js';

/**
 * A clustered node (docs/design.md §14): the built server with `workers`
 * 2 and 4, real worker processes sharing one port, a real kill -9 of one.
 */

const MiB = 1 << 20;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The pids of `pid`'s child processes (its workers), from /proc. */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/<pid>/stat is the parent pid; the command (field 2) may hold spaces, so read after its ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch { /* gone meanwhile */ }
  }
  return out.sort((a, b) => a - b);
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');

async function until(what: string, check: () => boolean | Promise<boolean>, server: SpawnedServer, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${server.output().slice(-4000)}`);
    await pause(50);
  }
}

/** The primary says "nanocdn listening" once all its workers listen (the first one starts alone). */
async function untilListening(server: SpawnedServer, workers: number): Promise<void> {
  await until(`${workers} workers listening`, () => childPids(server.pid).length === workers && server.output().includes('"message":"nanocdn listening"'), server);
}

interface Usage { inflight: { uploads: number; reservedBytes: number }; headroomBytes: number; classes: { class: string; files: number; bytes: number }[]; disk: { reserveBytes: number } }
const usageOf = async (server: SpawnedServer) => (await (await fetch(`${server.url}/usage`)).json()) as Usage;

/**
 * A connection to the node and the pid of the worker the kernel gave it to:
 * a GET of a missing file on it (404), whose X-Request-Id the worker's access
 * line (which carries its pid) names.
 */
async function workerConnection(server: SpawnedServer): Promise<{ conn: RawSocket; pid: number; offset: number }> {
  const conn = await rawSocket(server.port);
  conn.socket.write('GET /pub/acme/probe.bin HTTP/1.1\r\nHost: x\r\n\r\n');
  let id = '';
  await until('the probe\'s answer', () => {
    const text = conn.received();
    const length = /content-length: (\d+)/i.exec(text);
    const end = text.indexOf('\r\n\r\n');
    id = /x-request-id: (\S+)/i.exec(text)?.[1] ?? '';
    return length !== null && end >= 0 && text.length >= end + 4 + Number(length[1]);
  }, server);
  let pid = 0;
  await until('its access line', () => {
    const line = server.output().split('\n').find((l) => l.includes(`"requestId":"${id}"`));
    pid = line ? (JSON.parse(line) as { pid: number }).pid : 0;
    return pid > 0;
  }, server);
  return { conn, pid, offset: conn.received().length };
}

/** `perWorker` connections on each of the node's workers (the kernel deals them out; extras are closed). */
async function connectionsPerWorker(server: SpawnedServer, perWorker: number): Promise<Map<number, { conn: RawSocket; offset: number }[]>> {
  const byPid = new Map<number, { conn: RawSocket; offset: number }[]>();
  const workers = childPids(server.pid);
  for (let attempt = 0; attempt < 100 && workers.some((pid) => (byPid.get(pid)?.length ?? 0) < perWorker); attempt++) {
    const { conn, pid, offset } = await workerConnection(server);
    const list = byPid.get(pid) ?? [];
    if (list.length < perWorker) list.push({ conn, offset });
    else conn.socket.destroy();
    byPid.set(pid, list);
  }
  expect([...byPid.keys()].sort((a, b) => a - b)).toEqual(workers);
  return byPid;
}

/** Starts a declared upload on a connection and sends the first `firstBytes` of its body. */
function startUpload(conn: RawSocket, name: string, body: Buffer, firstBytes: number): { finish(): void } {
  conn.socket.write(`PUT /upload/${name} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
  conn.socket.write(body.subarray(0, firstBytes));
  // write, not end: a half-closed client is one that went away (the server answers 499 to it).
  return { finish: () => { conn.socket.write(body.subarray(firstBytes)); } };
}

/** The status of the answer that came after `offset` on the connection (0: none, it was cut). */
const statusOf = (conn: RawSocket, offset: number) => Number(/^HTTP\/1\.1 (\d{3})/.exec(conn.received().slice(offset))?.[1] ?? 0);

describe('workers 4: one node to its clients and to monitoring; eviction scheduled once per tick', () => {
  let server: SpawnedServer;
  const dataDir = path.join(os.tmpdir(), `nanocdn-cluster-${process.pid}-${Date.now()}`);

  beforeAll(async () => {
    server = await spawnServer({
      dataDir,
      config: { eviction: { schedule: '* * * * * *', tmpMaxAge: '1h' } },
      env: { NANOCDN_WORKERS: '4' },
    });
  });
  afterAll(async () => {
    const workers = childPids(server.pid);
    expect(await server.stop()).toBe(0);
    // SIGTERM drained every worker: none is left behind.
    expect(workers.filter(alive)).toEqual([]);
    await fsp.rm(dataDir, { recursive: true, force: true });
  });

  it('serves from 4 worker processes; /metrics sums the counters of all of them; /usage is the same whichever answers', async () => {
    await untilListening(server, 4);
    const names = Array.from({ length: 40 }, (_, i) => `pub/acme/spread/f${i}.bin`);
    for (const name of names) {
      // A new connection each: the primary hands connections to the workers in turn.
      const res = await rawRequest(server.port, { method: 'PUT', path: `/upload/${name}`, headers: { 'content-length': 1000, connection: 'close' }, body: randomBytes(1000) });
      expect(res.status).toBe(201);
    }
    // Each worker's access lines carry its pid: the uploads were served by several processes.
    await until('the access lines', () => server.output().split('\n').filter((l) => l.includes('"PUT"') && l.includes('"status":201')).length === 40, server);
    const servedBy = new Set(server.output().split('\n').filter((l) => l.includes('"PUT"') && l.includes('"status":201'))
      .map((l) => (JSON.parse(l) as { pid?: number }).pid));
    expect([...servedBy].every((pid) => childPids(server.pid).includes(pid!))).toBe(true);
    expect(servedBy.size).toBeGreaterThanOrEqual(3);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metricSample(metrics, 'nanocdn_uploads_total{result="created"}')).toBe(40);
    expect(metricSample(metrics, 'nanocdn_http_request_duration_seconds_count{route="upload",status="2xx"}')).toBe(40);
    expect(metricSample(metrics, 'nanocdn_stored_files{class="default"}')).toBe(40);
    expect(metricSample(metrics, 'nanocdn_worker_restarts_total')).toBe(0);
    // After a worker's first upload of the tenant, its next ones were admitted on spare holds, without asking the primary.
    expect(metricSample(metrics, 'nanocdn_spare_admissions_total')).toBeGreaterThanOrEqual(20);
    expect(metrics).toMatch(/^nanocdn_build_info\{[^}]*\} 1$/m);

    const answers = await Promise.all(Array.from({ length: 12 }, async () => {
      const res = await fetch(`${server.url}/usage`, { headers: { connection: 'close' } });
      const usage = await res.json() as Usage;
      return JSON.stringify({ classes: usage.classes, inflight: usage.inflight, reserve: usage.disk.reserveBytes });
    }));
    expect(new Set(answers).size).toBe(1);
    // Nothing in flight: the spare holds the workers keep are headroom, not uploads.
    expect(JSON.parse(answers[0]).inflight).toEqual({ uploads: 0, reservedBytes: 0 });
    expect(JSON.parse(answers[0]).classes.find((c: { class: string }) => c.class === 'default').files).toBe(40);
  });

  it('a delete through one worker is a 404 from every worker at once, though each kept the row; the workers run with the node flags', async () => {
    await untilListening(server, 4);
    // The primary was started without them (spawnServer): it gives them to its workers (src/node-flags.ts).
    for (const pid of childPids(server.pid)) expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining([...NODE_FLAGS]));
    const name = 'pub/acme/kept/row.bin';
    expect((await rawRequest(server.port, { method: 'PUT', path: `/upload/${name}`, headers: { 'content-length': 100, connection: 'close' }, body: randomBytes(100) })).status).toBe(201);
    // A new connection each: every worker reads the row, and keeps it (src/index/sqlite/files.ts).
    const get = () => rawRequest(server.port, { method: 'GET', path: `/${name}`, headers: { connection: 'close' } });
    for (let i = 0; i < 8; i++) expect((await get()).status).toBe(200);
    expect((await rawRequest(server.port, { method: 'DELETE', path: `/${name}`, headers: { connection: 'close' } })).status).toBe(204);
    for (let i = 0; i < 8; i++) expect((await get()).status).toBe(404);
  });

  it('runs the eviction schedule (every second) once per tick for the node, not once per worker', async () => {
    const since = Date.now();
    await pause(4500);
    const runs = await readIndexOf(dataDir, (index) => index.runs.recent(1000));
    const scheduled = runs.filter((run) => run.reason === 'schedule' && run.atMs >= since);
    const perSecond = new Map<number, number>();
    for (const run of scheduled) perSecond.set(Math.floor(run.atMs / 1000), (perSecond.get(Math.floor(run.atMs / 1000)) ?? 0) + 1);
    expect(scheduled.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...perSecond.values())).toBe(1);
  });
});

const canMount = requirement('root + mount (tmpfs)', canMountTmpfs(), 'run as root');

/** The disk reserve of the clusters on a tmpfs. */
const RESERVE_MIB = 8;

/**
 * Two workers on a tmpfs of `sizeMiB` with a RESERVE_MIB reserve (watermarks and the tenants' share of the
 * room out of the way), for the tests of one describe: started before them, stopped and unmounted after.
 */
function clusterOnTmpfs(sizeMiB: number): { readonly tmpfs: Tmpfs; readonly server: SpawnedServer } {
  const node = {} as { tmpfs: Tmpfs; server: SpawnedServer };
  beforeAll(async () => {
    node.tmpfs = mountTmpfs(sizeMiB);
    node.server = await spawnServer({
      dataDir: node.tmpfs.dir,
      config: {
        disk: { minFreeBytes: `${RESERVE_MIB}MiB`, minFreePercent: 0, highWatermarkPercent: 99, lowWatermarkPercent: 98 },
        limits: { tenant: { inflightBytes: null } },
      },
      env: { NANOCDN_WORKERS: '2' },
    });
  });
  afterAll(async () => {
    await node.server?.stop();
    node.tmpfs?.unmount();
  });
  return node;
}

/**
 * Nothing is held in the node (no upload in flight), and an upload of all the room statfs shows above the
 * reserve (less 256 KiB of slack; at least `atLeast` bytes) is admitted and stored whole.
 */
async function expectAllRoomAdmitted({ server, tmpfs }: { server: SpawnedServer; tmpfs: Tmpfs }, atLeast: number): Promise<void> {
  expect((await usageOf(server)).inflight).toEqual({ uploads: 0, reservedBytes: 0 });
  const st = await fsp.statfs(tmpfs.dir);
  const room = st.bavail * st.bsize - RESERVE_MIB * MiB - 256 * 1024;
  expect(room).toBeGreaterThan(atLeast);
  const big = randomBytes(room);
  const res = await rawRequest(server.port, { method: 'PUT', path: '/upload/pub/acme/k/rest.bin', headers: { 'content-length': big.length }, body: big });
  expect(res.status).toBe(201);
  expect(res.json.sha256).toBe(sha256(big));
}

describe.skipIf(!canMount)('workers 2 on a 64 MiB tmpfs: kill -9 of a worker during 8 uploads', () => {
  const node = clusterOnTmpfs(64);

  it('restarts the worker, returns its holds at once, shows nothing partial; the other worker\'s uploads complete', async () => {
    const { server, tmpfs } = node;
    await untilListening(server, 2);
    const byWorker = await connectionsPerWorker(server, 4);
    const [victim, survivor] = [...byWorker.keys()];
    // f0-f3 on the worker to be killed, f4-f7 on the other one.
    const conns = [...byWorker.get(victim)!, ...byWorker.get(survivor)!];
    const bodies = conns.map(() => randomBytes(4 * MiB));
    const uploads = conns.map(({ conn }, i) => startUpload(conn, `pub/acme/k/f${i}.bin`, bodies[i], MiB));
    // All 8 are admitted and hold their 4 MiB in the primary's ledger.
    await until('8 uploads in flight', async () => (await usageOf(server)).inflight.uploads === 8, server);

    process.kill(victim, 'SIGKILL');
    // The victim's connections close without an answer; the others' uploads finish.
    await Promise.all(conns.slice(0, 4).map(({ conn }) => conn.closed));
    for (const upload of uploads.slice(4)) upload.finish();
    await Promise.all(conns.map(({ conn }) => conn.closed));
    expect(conns.map(({ conn, offset }) => statusOf(conn, offset))).toEqual([0, 0, 0, 0, 201, 201, 201, 201]);
    const created = [4, 5, 6, 7];
    const cut = [0, 1, 2, 3];

    // The primary restarts it.
    await until('a new worker', () => childPids(server.pid).length === 2 && !childPids(server.pid).includes(victim), server);
    await until('the restart counted', async () => metricSample(await (await fetch(`${server.url}/metrics`)).text(), 'nanocdn_worker_restarts_total') === 1, server);
    expect(server.output()).toMatch(/"message":"worker died; restarting it"/);

    // Nothing partial: acknowledged files whole, cut ones absent, the spool empty (the dead worker's entries swept).
    for (const i of created) expect(sha256(readFileSync(path.join(tmpfs.dir, 'files', `pub/acme/k/f${i}.bin`)))).toBe(sha256(bodies[i]));
    for (const i of cut) {
      expect(existsSync(path.join(tmpfs.dir, 'files', `pub/acme/k/f${i}.bin`))).toBe(false);
      expect((await fetch(`${server.url}/pub/acme/k/f${i}.bin`)).status).toBe(404);
    }
    await until('an empty spool', async () => (await fsp.readdir(path.join(tmpfs.dir, 'tmp'))).length === 0, server);

    // Its holds were returned: nothing in flight, and an upload of what statfs says is left above the reserve is admitted.
    await expectAllRoomAdmitted(node, 30 * MiB);
  });
});

// A tenant new to a worker starts its upload on one of the worker's disk spares (docs/design.md §14): the room of those
// uploads and of the spares the worker kept comes back when it dies.
describe.skipIf(!canMount)('workers 2 on a 128 MiB tmpfs: kill -9 of a worker whose uploads started on disk spares', () => {
  const node = clusterOnTmpfs(128);

  it('the dead worker\'s uploads on disk spares, and its disk spares, are free at once; the other worker\'s complete', async () => {
    const { server, tmpfs } = node;
    await untilListening(server, 2);
    const byWorker = await connectionsPerWorker(server, 3);
    const [victim, survivor] = [...byWorker.keys()];
    // One upload through each worker first (asked by the primary): each worker then keeps disk spares of 2 MiB.
    for (const [i, { conn, offset }] of [byWorker.get(victim)![0], byWorker.get(survivor)![0]].entries()) {
      startUpload(conn, `pub/warm${i}/w.bin`, randomBytes(2_000_000), 2_000_000);
      await until('the first upload\'s answer', () => statusOf(conn, offset) === 201, server);
    }
    // Four tenants new to the node, two through each worker: all four start on disk spares, half their body sent.
    const conns = [...byWorker.get(victim)!.slice(1), ...byWorker.get(survivor)!.slice(1)];
    const bodies = conns.map(() => randomBytes(2_000_000));
    const uploads = conns.map(({ conn }, i) => startUpload(conn, `pub/new${i}/f.bin`, bodies[i], MiB));
    await until('4 uploads admitted by the primary', async () => (await usageOf(server)).inflight.uploads === 4, server);
    expect(metricSample(await (await fetch(`${server.url}/metrics`)).text(), 'nanocdn_spare_admissions_total')).toBe(4);

    process.kill(victim, 'SIGKILL');
    await Promise.all(conns.slice(0, 2).map(({ conn }) => conn.closed));
    for (const upload of uploads.slice(2)) upload.finish();
    await Promise.all(conns.map(({ conn }) => conn.closed));
    expect(conns.map(({ conn, offset }) => statusOf(conn, offset))).toEqual([0, 0, 201, 201]);
    for (const i of [2, 3]) expect(sha256(readFileSync(path.join(tmpfs.dir, 'files', `pub/new${i}/f.bin`)))).toBe(sha256(bodies[i]));
    for (const i of [0, 1]) expect(existsSync(path.join(tmpfs.dir, 'files', `pub/new${i}/f.bin`))).toBe(false);
    await until('a new worker', () => childPids(server.pid).length === 2 && !childPids(server.pid).includes(victim), server);
    await until('an empty spool', async () => (await fsp.readdir(path.join(tmpfs.dir, 'tmp'))).length === 0, server);

    // Nothing held for the dead worker: an upload of what statfs says is left above the reserve is admitted
    // (the living worker's spares are recalled for it; the dead one's are gone).
    await expectAllRoomAdmitted(node, 100 * MiB);
  });
});

describe('workers 2: SIGTERM drains every worker', () => {
  it('lets the uploads in flight on both workers finish (201), also when the workers get SIGTERM twice, then exits 0 with no worker left', async () => {
    const dataDir = path.join(os.tmpdir(), `nanocdn-drain-${process.pid}-${Date.now()}`);
    const server = await spawnServer({ dataDir, env: { NANOCDN_WORKERS: '2' } });
    try {
      await untilListening(server, 2);
      const workers = childPids(server.pid);
      // Two uploads on each worker.
      const conns = [...(await connectionsPerWorker(server, 2)).values()].flat();
      const bodies = conns.map(() => randomBytes(2 * MiB));
      const uploads = conns.map(({ conn }, i) => startUpload(conn, `pub/acme/d/f${i}.bin`, bodies[i], MiB));
      await until('4 uploads in flight', async () => (await usageOf(server)).inflight.uploads === 4, server);
      const exited = server.stop();
      await until('the drain to start', () => server.output().includes('"message":"shutting down"'), server);
      // As a signal to the whole process group would (kill -TERM -pgid): a worker's second SIGTERM changes nothing.
      for (const pid of workers) process.kill(pid, 'SIGTERM');
      for (const upload of uploads) upload.finish();
      await Promise.all(conns.map(({ conn }) => conn.closed));
      expect(conns.map(({ conn, offset }) => statusOf(conn, offset))).toEqual([201, 201, 201, 201]);
      expect(await exited).toBe(0);
      expect(workers.filter(alive)).toEqual([]);
      for (const [i, body] of bodies.entries()) expect(sha256(readFileSync(path.join(dataDir, 'files', `pub/acme/d/f${i}.bin`)))).toBe(sha256(body));
    } finally {
      await server.kill9();
      await fsp.rm(dataDir, { recursive: true, force: true });
    }
  });
});
