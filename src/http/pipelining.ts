import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * HTTP/1.1 pipelining (RFC 9112 §9.3.2): a client may send the next request
 * on a connection before the answer to the previous one. Node parses and
 * emits it at once, so `PUT /upload/x` followed by `GET /x` would be read
 * while the upload is still being stored (404). This wrapper hands a
 * connection's next request to `handler` only once the previous response
 * has finished (or the connection closed), so requests on one connection
 * take effect in order.
 */
export function oneRequestAtATime(handler: RequestListener): RequestListener {
  const previous = new WeakMap<Socket, Promise<void>>();
  return (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const before = previous.get(socket);
    const finished = new Promise<void>((resolve) => {
      res.once('finish', resolve);
      res.once('close', resolve);
    });
    previous.set(socket, finished);
    if (before === undefined) {
      handler(req, res);
      return;
    }
    void before.then(() => handler(req, res));
  };
}
