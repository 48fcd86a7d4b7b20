/**
 * The platform floor (bench/floor.ts): the plainest Node.js server that does
 * what a crash-safe storage node must do for a PUT and a GET, and nothing
 * else — no framework, no index, no auth, no logging, no limits. What it
 * reaches on a machine is about the most a Node.js node can reach there.
 *
 *   node dist/bench/floor-server.js --port P --files DIR --tmp DIR [--no-hash] [--blocking-reads | --cached-reads]
 *
 * node:cluster with one worker per core (os.availableParallelism()), all on
 * 127.0.0.1:P. PUT /<name>: the body streams into a new tmp file (chunks
 * hashed with sha256 as they come, written as they are, no copy), fsync,
 * close, rename into DIR/<name>, fsync of the directory, 201 {"sha256": …}.
 * GET /<name>: open, fstat, headers (Content-Length, Content-Type, ETag),
 * the body. --no-hash leaves out the sha256 (nginx's DAV computes none).
 * --blocking-reads makes the GET's open, fstat, read and close synchronous
 * calls in the event loop, as nginx does them without `aio threads`.
 * --cached-reads keeps the whole body of a small file (≤ 64 KiB) in memory
 * once a worker has read it, and answers it from there (the headers of its
 * first answer, ETag included), with nothing to
 * check: the floor of a node that serves small files from its read cache
 * (the node's src/http/read/read-cache.ts, which checks each entry against
 * the index row).
 */
import cluster from 'node:cluster';
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Files up to this size are read with one read() into one buffer and sent
 * with one end(): headers and body leave in one writev, and there is no
 * stream object or pool to manage.
 */
const SMALL_FILE = 64 << 10;
/**
 * Larger files are sent chunk by chunk (memory per download bounded, as a
 * storage node's must be, whatever the size) from 1 MiB reads into pooled
 * buffers: 2 reads for 1.6 MB. Not fs.createReadStream: its fresh buffer per
 * read cost about as much CPU in allocation and GC as the copying itself
 * (docs/read-path.md; the node's src/http/read/file-sender.ts pools for that
 * reason, and adds a node-wide budget for stalled readers the floor leaves
 * out; it is not imported, so the floor does not move when the node does).
 */
const READ_CHUNK = 1 << 20;
/** Free read buffers kept per worker (32 MiB); more in flight at once are left to the GC. */
const POOL_BUFFERS = 32;
/** Body bytes received but not yet written before the socket is paused (a disk slower than the network). */
const PAUSE_AT = 512 << 10;

// Callback APIs, not fs.promises: no FileHandle object (and its GC finalizer) per request.
const open = promisify(fs.open);
const close = promisify(fs.close);
const fstat = promisify(fs.fstat);
const read = promisify(fs.read);
const fsync = promisify(fs.fsync);
const rename = promisify(fs.rename);
const unlink = promisify(fs.unlink);
const mkdir = promisify(fs.mkdir);

/** The calls of a GET: in libuv's thread pool (the default), or blocking the event loop (--blocking-reads). */
interface ReadCalls {
  open(path: string): Promise<number>;
  fstat(fd: number): Promise<fs.Stats>;
  read(fd: number, buffer: Buffer, length: number, position: number): Promise<number>;
  close(fd: number): Promise<void>;
}

/**
 * Never blocks the event loop: every call is a round trip through the
 * thread pool (4 for a small file), which on 2 busy cores is where a
 * small read loses most of its time (docs/read-path.md).
 */
const threadPoolReads: ReadCalls = {
  open: (path) => open(path, 'r'),
  fstat,
  read: async (fd, buffer, length, position) => (await read(fd, buffer, 0, length, position)).bytesRead,
  close,
};

/**
 * No thread pool: microseconds per call while the file is in the page
 * cache; on a disk read, every connection of the worker waits. nginx takes
 * that bet by default (its file reads and sendfile block its worker).
 */
const blockingReads: ReadCalls = {
  open: async (path) => fs.openSync(path, 'r'),
  fstat: async (fd) => fs.fstatSync(fd),
  read: async (fd, buffer, length, position) => fs.readSync(fd, buffer, 0, length, position),
  close: async (fd) => fs.closeSync(fd),
};

interface Options {
  port: number;
  filesDir: string;
  tmpDir: string;
  hash: boolean;
  reads: ReadCalls;
  /** Small bodies kept by name once read, with the headers they were sent with (--cached-reads), else undefined. */
  cached?: Map<string, { headers: OutgoingHttpHeaders; body: Buffer }>;
}

function parseArgs(argv: string[]): Options {
  const options: Partial<Options> = { hash: true, reads: threadPoolReads };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => argv[++i] ?? usage(`${arg} needs a value`);
    switch (arg) {
      case '--port': options.port = Number(value()); break;
      case '--files': options.filesDir = value(); break;
      case '--tmp': options.tmpDir = value(); break;
      case '--no-hash': options.hash = false; break;
      case '--blocking-reads': options.reads = blockingReads; break;
      case '--cached-reads': options.cached = new Map(); break;
      default: usage(`unknown option ${arg}`);
    }
  }
  if (!options.port || !options.filesDir || !options.tmpDir) usage('--port, --files and --tmp are required');
  return options as Options;
}

function usage(error: string): never {
  process.stderr.write(`floor-server: ${error}\nusage: node dist/bench/floor-server.js --port P --files DIR --tmp DIR [--no-hash] [--blocking-reads | --cached-reads]\n`);
  process.exit(2);
}

const options = parseArgs(process.argv.slice(2));
if (cluster.isPrimary) runPrimary();
else runWorker();

/**
 * Forks the workers and only watches them. Connections are handed out by
 * cluster's default round robin (the primary accepts): wrk's 32 keep-alive
 * connections are spread evenly, and the primary's CPU is counted with the
 * workers' (the bench reads the process tree).
 */
function runPrimary(): void {
  let alive = availableParallelism();
  let stopping = false;
  for (let i = 0; i < alive; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    alive--;
    if (stopping) {
      if (alive === 0) process.exit(0);
      return;
    }
    // One worker fewer would skew every figure after it: fail loudly (the bench's wrk then fails to connect).
    process.stderr.write(`floor-server: worker ${worker.process.pid} exited (${code ?? signal}); stopping\n`);
    process.exit(1);
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function runWorker(): void {
  const server = createServer((req, res) => {
    const name = nameOf(req.url ?? '');
    if (name === null) answer(res, 404, { error: 'not_found' });
    else if (req.method === 'PUT') void put(req, res, name);
    else if (req.method === 'GET') void get(res, name);
    else answer(res, 405, { error: 'method_not_allowed' });
  });
  server.listen(options.port, '127.0.0.1');
}

/**
 * The name in a request path, or null: plain segments only (no "", "." or
 * ".." segment, no %-escapes), so nothing outside the files dir is reachable.
 */
function nameOf(url: string): string | null {
  const query = url.indexOf('?');
  const name = (query === -1 ? url : url.slice(0, query)).slice(1);
  if (name === '' || name.includes('%') || name.includes('\0')) return null;
  for (const segment of name.split('/')) if (segment === '' || segment === '.' || segment === '..') return null;
  return name;
}

let uploads = 0;

async function put(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
  // Unique per worker and upload; tmp and files are on one filesystem, so the rename is atomic.
  const tmpPath = join(options.tmpDir, `${process.pid}-${++uploads}`);
  const finalPath = join(options.filesDir, name);
  let fd: number | undefined;
  try {
    fd = await open(tmpPath, 'wx', 0o644);
    const hash = options.hash ? createHash('sha256') : null;
    await receive(req, fd, hash);
    await fsync(fd);
    const closing = fd;
    fd = undefined;
    await close(closing);
    for (const dir of await renameInto(tmpPath, finalPath)) await fsyncDir(dir);
    answer(res, 201, { sha256: hash ? hash.digest('hex') : null });
  } catch (err) {
    if (fd !== undefined) await close(fd).catch(() => {});
    await unlink(tmpPath).catch(() => {});
    // The rest of the body (if any) is not read: close the connection after the answer.
    if (!res.headersSent) res.setHeader('Connection', 'close');
    answer(res, 500, { error: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
  }
}

/**
 * Writes the request body to `fd` as it arrives: every chunk is hashed at
 * once and queued as it is (no copy); whatever queued while a write was in
 * the thread pool goes in the next single writev. Resolves once the whole
 * body is written; rejects when the client goes away or a write fails — only
 * after the write in flight returned, so the caller may close the fd.
 */
function receive(req: IncomingMessage, fd: number, hash: Hash | null): Promise<void> {
  return new Promise((resolve, reject) => {
    let queue: Buffer[] = [];
    let queued = 0;
    let writing = false;
    let ended = false;
    let failure: Error | undefined;
    const fail = (err: Error) => {
      if (failure) return;
      failure = err;
      if (!writing) reject(err);
    };
    const pump = () => {
      if (writing || failure) return;
      if (queue.length === 0) {
        if (ended) resolve();
        return;
      }
      const chunks = queue;
      queue = [];
      queued = 0;
      writing = true;
      writevAll(fd, chunks, (err) => {
        writing = false;
        if (failure) { reject(failure); return; }
        if (err) { failure = err; reject(err); return; }
        if (req.isPaused()) req.resume();
        pump();
      });
    };
    req.on('data', (chunk: Buffer) => {
      hash?.update(chunk);
      queue.push(chunk);
      queued += chunk.length;
      if (queued >= PAUSE_AT) req.pause();
      pump();
    });
    req.once('end', () => { ended = true; pump(); });
    req.once('error', fail);
    req.once('close', () => { if (!ended) fail(new Error('client went away before the end of the body')); });
  });
}

/** fs.writev until every byte is written (a regular file may take fewer, e.g. on a nearly full disk). */
function writevAll(fd: number, chunks: Buffer[], done: (err: Error | null) => void): void {
  fs.writev(fd, chunks, (err, written) => {
    if (err) { done(err); return; }
    const rest: Buffer[] = [];
    for (const chunk of chunks) {
      if (written >= chunk.length) { written -= chunk.length; continue; }
      rest.push(written > 0 ? chunk.subarray(written) : chunk);
      written = 0;
    }
    if (rest.length === 0) done(null);
    else writevAll(fd, rest, done);
  });
}

/**
 * rename() into place (replacing, like nginx's DAV PUT); a missing directory
 * is created first, as nginx's `create_full_put_path` does. Returns the
 * directories whose entries changed, deepest first: with a new directory,
 * its parents too, or a crash could lose it with the file in it.
 */
async function renameInto(tmpPath: string, finalPath: string): Promise<string[]> {
  const dir = dirname(finalPath);
  try {
    await rename(tmpPath, finalPath);
    return [dir];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const firstCreated = await mkdir(dir, { recursive: true });
  await rename(tmpPath, finalPath);
  const dirs = [dir];
  if (firstCreated) for (let d = dir; d !== dirname(firstCreated);) dirs.push(d = dirname(d));
  return dirs;
}

async function fsyncDir(dir: string): Promise<void> {
  const fd = await open(dir, 'r');
  try {
    await fsync(fd);
  } finally {
    await close(fd);
  }
}

async function get(res: ServerResponse, name: string): Promise<void> {
  const { reads, cached } = options;
  const kept = cached?.get(name);
  if (kept !== undefined) {
    res.writeHead(200, kept.headers);
    res.end(kept.body);
    return;
  }
  let fd: number | undefined;
  try {
    fd = await reads.open(join(options.filesDir, name));
    const stat = await reads.fstat(fd);
    if (!stat.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
    const headers: OutgoingHttpHeaders = {
      'Content-Length': stat.size,
      'Content-Type': 'application/octet-stream',
      // nginx's shape: mtime and size in hex.
      ETag: `"${Math.floor(stat.mtimeMs / 1000).toString(16)}-${stat.size.toString(16)}"`,
    };
    res.writeHead(200, headers);
    if (stat.size <= SMALL_FILE) {
      const body = Buffer.allocUnsafe(stat.size);
      const bytesRead = await reads.read(fd, body, stat.size, 0);
      if (bytesRead !== stat.size) throw new Error('file shorter than its Content-Length');
      cached?.set(name, { headers, body });
      res.end(body);
    } else {
      await sendChunks(res, fd, stat.size);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') answer(res, 404, { error: 'not_found' });
    else if (!res.headersSent) answer(res, 500, { error: code ?? (err as Error).message });
    // Headers gone: the Content-Length can no longer hold; cut the response.
    else res.destroy();
  } finally {
    if (fd !== undefined) await reads.close(fd).catch(() => {});
  }
}

const pool: Buffer[] = [];

/**
 * The body in READ_CHUNK reads into pooled buffers; a buffer goes back to
 * the pool once the socket took its bytes. Waits while the socket pushes
 * back; stops when the client goes away.
 */
async function sendChunks(res: ServerResponse, fd: number, size: number): Promise<void> {
  for (let position = 0; position < size;) {
    if (res.destroyed) return;
    const buffer = pool.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK);
    const bytesRead = await options.reads.read(fd, buffer, Math.min(READ_CHUNK, size - position), position);
    if (bytesRead === 0) throw new Error('file shorter than its Content-Length');
    position += bytesRead;
    const flowing = res.write(bytesRead === READ_CHUNK ? buffer : buffer.subarray(0, bytesRead), () => {
      if (pool.length < POOL_BUFFERS) pool.push(buffer);
    });
    if (!flowing && position < size) await drained(res);
  }
  res.end();
}

/** Resolves at 'drain', or at 'close' (a client gone never drains). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function answer(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
}
