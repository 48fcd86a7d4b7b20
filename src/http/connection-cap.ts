import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import type { Logger } from '../logger.js';

/** Descriptors a node needs besides its sockets: index, logs, listening socket, tmp sweeps. */
const FD_HEADROOM = 256;
/** At most one "connection refused" warning per this interval. */
const DROP_LOG_EVERY_MS = 10_000;

/**
 * `http.maxConnections` (docs/design.md, issue 17): past the cap Node closes a
 * new connection right after accept — no byte is read or written, no parser or
 * buffer is allocated, its descriptor is freed at once; the client sees the
 * connection closed (ECONNRESET or EOF) and retries elsewhere. A 503 is not
 * sent on purpose: answering needs the request read first (closing a socket
 * with an unread request makes the kernel send RST, which can discard the 503
 * before the client reads it), i.e. keeping exactly the socket, parser and
 * descriptor the cap exists to bound.
 *
 * Refusals are counted (`onDrop`) and logged at most once per 10 s.
 */
export function capConnections(server: Server, maxConnections: number, logger: Logger, onDrop: () => void = () => {}): void {
  server.maxConnections = maxConnections;
  let dropped = 0;
  let lastLogMs = -Infinity;
  server.on('drop', () => {
    onDrop();
    dropped++;
    const now = Date.now();
    if (now - lastLogMs < DROP_LOG_EVERY_MS) return;
    lastLogMs = now;
    logger.warn(`connection refused: ${maxConnections} connections open (http.maxConnections)`, { maxConnections, refusedSinceLastLine: dropped });
    dropped = 0;
  });
}

/** Descriptors `maxConnections` connections may need: a socket and one open file (upload spool, download) each, plus headroom. */
export function descriptorsNeeded(maxConnections: number): number {
  return 2 * maxConnections + FD_HEADROOM;
}

/** The soft RLIMIT_NOFILE of this process from /proc/self/limits; null when unknown (not Linux) or unlimited. */
export function openFilesLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try { text = readFileSync('/proc/self/limits', 'utf8'); } catch { return null; }
  }
  const match = /^Max open files\s+(\S+)/m.exec(text);
  if (!match || match[1] === 'unlimited') return null;
  const soft = Number(match[1]);
  return Number.isFinite(soft) ? soft : null;
}

/** Logs a warning at start when the descriptor limit is below what `maxConnections` needs. */
export function warnOnLowFdLimit(maxConnections: number, logger: Logger, limit = openFilesLimit()): void {
  const needed = descriptorsNeeded(maxConnections);
  if (limit === null || limit >= needed) return;
  logger.warn(
    `open files limit (ulimit -n) is ${limit}, below the ${needed} that http.maxConnections ${maxConnections} may need ` +
    '(a socket and an open file per connection): under load new connections or files will fail with EMFILE. ' +
    'Raise it (systemd: LimitNOFILE=65536) or lower http.maxConnections.',
    { openFilesLimit: limit, needed, maxConnections },
  );
}
