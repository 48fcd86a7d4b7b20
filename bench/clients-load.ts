/**
 * The load of the clients bench (bench/clients.ts), in its own process so
 * that its sockets, buffers and CPU are not the probe's: started with fork(),
 * told what to do over IPC, reports back over IPC.
 *
 *   parent → {cmd: 'start', load}   child → {type: 'ready', ...} once the load is in place
 *   parent → {cmd: 'stop'}          child → {type: 'done', ...} (uploads: by themselves when all answered)
 */
import { connect, type Socket } from 'node:net';
import { request, Agent } from 'node:http';

export type LoadKind = 'stalled-readers' | 'slow-uploaders' | 'idle-keepalive' | 'uploads';

export interface LoadSpec {
  kind: LoadKind;
  port: number;
  count: number;
  /** GET path (readers, keep-alive) or the PUT path prefix (uploaders: `${path}${i}`). */
  path: string;
  /** Uploads: bytes per upload; slow uploaders: body bytes, sent 1 KiB per second. */
  bytes?: number;
}

export interface LoadReport {
  type: 'done';
  /** Answers by status ("201", "503", ...) and "error: <code>" for connections that failed. */
  outcomes: Record<string, number>;
  elapsedMs: number;
}

const CONNECT_BATCH = 200;
const SLOW_CHUNK = Buffer.alloc(1024, 0x61);

const sockets = new Set<Socket>();
const outcomes: Record<string, number> = {};
const note = (key: string) => { outcomes[key] = (outcomes[key] ?? 0) + 1; };
let started = 0;
let finishing = false;

// The bench went away (^C, a crash): so does its load.
process.on('disconnect', () => process.exit(0));
process.on('message', (message: { cmd: 'start'; load: LoadSpec } | { cmd: 'stop' }) => {
  if (message.cmd === 'start') { started = Date.now(); void run(message.load); }
  else finish();
});

async function run(load: LoadSpec): Promise<void> {
  if (load.kind === 'uploads') {
    send({ type: 'ready' });
    await Promise.all(Array.from({ length: load.count }, (_, i) => upload(load, i)));
    finish();
    return;
  }
  for (let i = 0; i < load.count; i += CONNECT_BATCH) {
    const batch = Array.from({ length: Math.min(CONNECT_BATCH, load.count - i) }, (_, j) => open(load, i + j));
    await Promise.all(batch);
  }
  send({ type: 'ready', open: sockets.size });
  if (load.kind === 'slow-uploaders') {
    // Ends by itself once every upload was answered (or failed).
    const timer = setInterval(() => { if (sockets.size === 0) { clearInterval(timer); finish(); } }, 200);
  }
}

/** One connection of a held load; resolves once it is in place (first body byte, response read, or headers sent). */
function open(load: LoadSpec, i: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(load.port, '127.0.0.1');
    sockets.add(socket);
    let settled = false;
    const settle = () => { if (!settled) { settled = true; resolve(); } };
    let head = '';
    let answered = false;
    socket.on('error', (err: NodeJS.ErrnoException) => { if (!answered) note(`error: ${err.code ?? err.message}`); answered = true; settle(); });
    socket.on('close', () => {
      sockets.delete(socket);
      // Held connections the server closed before the bench let go (a send timeout, a keep-alive timeout).
      if (!finishing && !answered) note('error: closed');
      else if (!finishing && load.kind !== 'slow-uploaders') note('closed by the server while held');
      answered = true;
      settle();
    });
    socket.on('connect', () => {
      if (load.kind === 'slow-uploaders') {
        const bytes = load.bytes ?? 16 << 10;
        socket.write(`PUT ${load.path}${i} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${bytes}\r\nConnection: close\r\n\r\n`);
        let sent = 0;
        const tick = setInterval(() => {
          const chunk = SLOW_CHUNK.subarray(0, Math.min(SLOW_CHUNK.length, bytes - sent));
          sent += chunk.length;
          socket.write(chunk);
          if (sent >= bytes) clearInterval(tick);
        }, 1000);
        socket.once('close', () => clearInterval(tick));
        settle();
      } else {
        socket.write(`GET ${load.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      }
    });
    socket.on('data', (chunk: Buffer) => {
      if (load.kind === 'stalled-readers') {
        // Read the status, then stop reading: the server's send buffer fills and it must wait.
        note(statusOf(chunk.toString('latin1')));
        answered = true;
        socket.pause();
        settle();
        return;
      }
      if (answered) return;
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/content-length:\s*(\d+)/i.exec(head.slice(0, end))?.[1] ?? 0);
      if (load.kind === 'slow-uploaders' || head.length - end - 4 >= length) {
        answered = true;
        note(statusOf(head));
        head = '';
        settle();
      }
    });
  });
}

function statusOf(text: string): string {
  return /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 'error: bad answer';
}

/** One chunked PUT of load.bytes (no Content-Length), sent as fast as the server takes it. */
function upload(load: LoadSpec, i: number): Promise<void> {
  const agent = new Agent({ keepAlive: false });
  const chunk = Buffer.alloc(256 << 10, i & 0xff);
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: load.port, method: 'PUT', path: `${load.path}${i}`, agent, headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
      note(String(res.statusCode));
      res.resume();
      res.once('end', resolve);
    });
    req.once('error', (err: NodeJS.ErrnoException) => { note(`error: ${err.code ?? err.message}`); resolve(); });
    let left = load.bytes ?? 100e6;
    const write = () => {
      while (left > 0) {
        const part = chunk.subarray(0, Math.min(chunk.length, left));
        left -= part.length;
        if (!req.write(part)) { req.once('drain', write); return; }
      }
      req.end();
    };
    write();
  });
}

function finish(): void {
  if (finishing) return;
  finishing = true;
  for (const socket of sockets) socket.destroy();
  const report: LoadReport = { type: 'done', outcomes, elapsedMs: Date.now() - started };
  send(report);
  setTimeout(() => process.exit(0), 200).unref();
}

function send(message: object): void {
  process.send?.(message);
}
