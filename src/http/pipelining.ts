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
  const lines = new WeakMap<Socket, Line>();
  return (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    let line = lines.get(socket);
    if (line === undefined) {
      line = { busy: false, waiting: [] };
      lines.set(socket, line);
    }
    const current = line;
    const run = () => {
      current.busy = true;
      // 'close' follows 'finish' on every response (and fires alone when the connection drops).
      res.once('close', () => {
        current.busy = false;
        current.waiting.shift()?.();
      });
      handler(req, res);
    };
    if (current.busy) current.waiting.push(run);
    else run();
  };
}

/** The requests of one connection: whether one is being answered, and those parsed behind it. */
interface Line {
  busy: boolean;
  readonly waiting: (() => void)[];
}
