import type { ServerResponse } from 'node:http';

/**
 * An AbortSignal that fires when the client goes away before the response
 * is finished, passed to every storage call: an aborted upload stops writing at once.
 */
export function abortSignalOf(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) controller.abort();
  };
  if (res.socket?.destroyed) controller.abort();
  else res.once('close', onClose);
  return controller.signal;
}
