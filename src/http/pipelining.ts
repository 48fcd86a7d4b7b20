import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** The response a connection answered last (or is answering), on its socket. */
const LAST = Symbol('nanocdn.lastResponse');

type Connection = Socket & { [LAST]?: ServerResponse };

/**
 * HTTP/1.1 pipelining (RFC 9112 §9.3.2): a client may send the next request
 * on a connection before the answer to the previous one. Node parses and
 * emits it at once, so `PUT /upload/x` followed by `GET /x` would be read
 * while the upload is still being stored (404). This wrapper hands a
 * connection's next request to `handler` only once the previous response
 * has closed (finished, or the connection dropped), so requests on one
 * connection take effect in order.
 *
 * Almost no client pipelines: the usual request finds the one before it
 * closed, and costs a property read and write on its socket. Only a request
 * parsed early waits, on a 'close' listener of the response just ahead of
 * it (so a queue keeps its order). Before, every response had a 'close'
 * listener and every connection a queue object. The socket keeps its last
 * response referenced until the next request or its own end.
 */
export function oneRequestAtATime(handler: RequestListener): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const connection = req.socket as Connection;
    const ahead = connection[LAST];
    connection[LAST] = res;
    if (ahead === undefined || ahead.closed) handler(req, res);
    else ahead.once('close', () => handler(req, res));
  };
}
