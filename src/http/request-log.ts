import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '../logger.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * One JSON line per request: id, method, path (never the query string: it
 * may hold a signature), name, tenant, status, bytes, ms. The Authorization
 * header is never logged.
 */
export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = id;
    res.setHeader('X-Request-Id', id);
    let logged = false;
    // 'close' alone fires for a client that went away mid-upload: log it too, once.
    const log = () => {
      if (logged) return;
      logged = true;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const completed = res.writableFinished;
      const level = completed && res.statusCode >= 500 ? 'error' : 'http';
      // winston formats (timestamp, JSON) before its transports filter by level: skip that work for a line nobody gets.
      if (!logger.isLevelEnabled(level)) return;
      logger.log(level, 'request', {
        requestId: id,
        method: req.method,
        path: req.path,
        name: res.locals.name,
        tenant: res.locals.tenant,
        status: completed ? res.statusCode : 499,
        error: completed ? res.locals.errorCode : (res.locals.errorCode ?? 'client_closed'),
        ...(completed ? {} : { aborted: true }),
        bytesIn: res.locals.bytesIn ?? 0,
        bytesOut: Number(res.getHeader('content-length') ?? 0),
        ms: Math.round(ms * 100) / 100,
      });
    };
    res.once('finish', log);
    res.once('close', log);
    next();
  };
}
