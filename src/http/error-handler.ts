import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler } from 'express';
import { HttpError, isHttpError } from '../errors.js';
import type { Logger } from '../logger.js';

/** How long a refused request's unread body is drained before the socket is closed (nginx: lingering close). */
const LINGER_MS = 2000;

/**
 * Renders every error as JSON (docs/design.md §4). A refusal sent before the body
 * was read closes the connection so the body is not read on; anything that
 * is not an HttpError is logged and answered with a generic 500.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const error = toHttpError(err);
    if (!isHttpError(err)) {
      logger.error('unhandled error', { requestId: res.locals.requestId as string | undefined, error: (err as Error)?.stack ?? String(err) });
    }
    res.locals.errorCode = error.code;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendError(req, res, error);
  };
}

/**
 * Writes `error` as the JSON answer (Express routes and the read path, which
 * runs in front of Express, alike): status, `Cache-Control: no-store`, the
 * error's own headers, `{error, message, ...details}`.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, error: HttpError): void {
  if (!req.complete) closeAfterResponse(req, res);
  // A route may have set the headers of a success already: an error must not
  // carry a file's Content-Type, ETag or a year-long public Cache-Control (a
  // CDN would keep a 404 for a file uploaded a second later).
  for (const header of ['ETag', 'Last-Modified', 'Content-Disposition']) res.removeHeader(header);
  const body = JSON.stringify(error.toJSON());
  res.writeHead(error.status, {
    'Cache-Control': 'no-store',
    ...error.headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  // Node writes no body for a HEAD request.
  res.end(body);
}

/**
 * The body was not read: say Connection: close, then close as nginx's
 * lingering close does. Node would close the socket right after the response;
 * with body bytes still unread the kernel answers them with a RST, and a
 * client still sending loses the response it has not read yet (curl: "Failed
 * sending data to the peer" instead of the 409). So: FIN after the response,
 * discard what still arrives, and cut a client that keeps sending.
 */
function closeAfterResponse(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('Connection', 'close');
  const socket = req.socket;
  // Node's http server calls destroySoon() once a Connection: close response
  // is written: an internal of node:http, not a documented API, so
  // test/unit/framework-contracts.test.ts fails if a Node release stops doing so.
  socket.destroySoon = () => {
    socket.end();
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
}

function toHttpError(err: unknown): HttpError {
  if (isHttpError(err)) return err;
  const status = (err as { status?: number; statusCode?: number })?.status ?? (err as { statusCode?: number })?.statusCode;
  if (status === 400 && (err as { type?: string }).type !== undefined) return new HttpError('invalid_request');
  return new HttpError('internal');
}
