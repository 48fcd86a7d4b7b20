import winston from 'winston';
import TransportStream from 'winston-transport';

export type Logger = winston.Logger;

/** JSON lines on stdout; one child logger per module (`logger.child({ module })`). */
export function createLogger(level: string, options: { silent?: boolean; meta?: Record<string, unknown> } = {}): Logger {
  return winston.createLogger({
    level,
    silent: options.silent ?? false,
    // A clustered node's workers say which process wrote a line ({ pid }).
    defaultMeta: options.meta,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new StdoutLines()],
  });
}

/** Linux's atomic pipe write size, in bytes. */
const PIPE_BUF = 4096;

/** Where winston's formats leave the finished line (triple-beam's MESSAGE). */
const MESSAGE = Symbol.for('message');

/**
 * Log lines to stdout, written together once per turn of the event loop:
 * stdout is synchronous on Linux (a file or a pipe), so one write(2) per
 * access line cost more than answering a small GET. Lines keep their order;
 * a turn's lines are written before the next turn starts (setImmediate), and
 * whatever is pending when the process exits is written then. A kill -9
 * loses at most the lines of the turn it interrupts.
 */
class StdoutLines extends TransportStream {
  private pending: string[] = [];
  private scheduled = false;

  constructor() {
    super();
    unflushed.add(this);
  }

  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    this.line(String(info[MESSAGE]));
    next();
  }

  /** Queues one finished line. */
  line(text: string): void {
    this.pending.push(text);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  readonly flush = (): void => {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    // The workers of a clustered node share stdout: a write of at most PIPE_BUF bytes to a pipe is never
    // interleaved with another process's, so lines are written in whole-line chunks of at most that.
    let chunk = '';
    let bytes = 0;
    for (const line of lines) {
      const size = Buffer.byteLength(line) + 1;
      if (bytes > 0 && bytes + size > PIPE_BUF) {
        process.stdout.write(chunk);
        chunk = '';
        bytes = 0;
      }
      chunk += `${line}\n`;
      bytes += size;
    }
    process.stdout.write(chunk);
  };

  override close(): void {
    this.flush();
    unflushed.delete(this);
  }
}

const unflushed = new Set<StdoutLines>();

/** Writes one log line with fixed fields: the shape of a hot line (access lines, one per request). */
export type LineWriter = (level: string, message: string, meta: Record<string, unknown>) => void;

/**
 * A writer of lines that carry `fixed` (e.g. `{ module: 'http' }`), as
 * `logger.child(fixed).log(level, message, meta)` would write them, for the
 * one line per request: when `logger` writes JSON lines to stdout it builds
 * the line itself instead of going through winston's stream pipeline
 * (measured ~20 µs per line in a busy node, a third of a small GET's CPU):
 * the same fields in the same order, the fixed ones serialized once, the
 * timestamp formatted once per millisecond (0.5 µs each time). Any other
 * logger (a test's, a silent one) gets the line through winston. The caller
 * checks the level first (logger.isLevelEnabled); `meta` must not repeat a
 * key of `fixed` or of the logger's defaults.
 */
export function lineWriter(logger: Logger, fixed: Record<string, unknown>): LineWriter {
  const sink = logger.transports.find((t): t is StdoutLines => t instanceof StdoutLines);
  if (sink === undefined) {
    const child = logger.child(fixed);
    return (level, message, meta) => child.log(level, message, meta);
  }
  // `,"pid":1,"module":"http"`: what every line carries after its level and message.
  const fixedJson = JSON.stringify({ ...(logger.defaultMeta as Record<string, unknown> | undefined), ...fixed });
  const fixedFields = fixedJson === '{}' ? '' : `,${fixedJson.slice(1, -1)}`;
  return (level, message, meta) => {
    if (logger.silent) return;
    const metaJson = JSON.stringify(meta);
    const metaFields = metaJson === '{}' ? '' : `,${metaJson.slice(1, -1)}`;
    sink.line(`{"level":${JSON.stringify(level)},"message":${JSON.stringify(message)}${fixedFields}${metaFields},"timestamp":"${timestamp()}"}`);
  };
}

let stampedMs = NaN;
let stamp = '';

/** Now as winston's timestamp format writes it (ISO 8601, UTC), formatted again only when the millisecond changed. */
function timestamp(): string {
  const now = Date.now();
  if (now !== stampedMs) {
    stampedMs = now;
    stamp = new Date(now).toISOString();
  }
  return stamp;
}

process.once('exit', () => {
  for (const transport of unflushed) transport.flush();
});

/** A logger that drops everything, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return createLogger('error', { silent: true });
}

/**
 * The logger of a one-shot command (cleanup, reindex, scrub): sentences on
 * stderr (`nanocdn: warn: disk state ok -> warning (path=…)`), never JSON
 * lines, so stdout stays the report (human, or one `--json` document) and a
 * terminal shows no JSON between the report's lines.
 */
export function cliLogger(level = 'warn'): Logger {
  const human = winston.format.printf((info) => {
    const { level: lvl, message, ...meta } = info as Record<string, unknown> & { level: string; message: string };
    const details = Object.entries(meta).filter(([key]) => typeof key === 'string' && key !== 'module')
      .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`).join(' ');
    return `nanocdn: ${lvl}: ${message}${details ? ` (${details})` : ''}`;
  });
  return winston.createLogger({
    level,
    format: human,
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] })],
  });
}
