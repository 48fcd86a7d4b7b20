import winston from 'winston';

export type Logger = winston.Logger;

/** JSON lines on stdout; one child logger per module (`logger.child({ module })`). */
export function createLogger(level: string, options: { silent?: boolean } = {}): Logger {
  return winston.createLogger({
    level,
    silent: options.silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}

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
