import { HttpError } from '../errors.js';

/**
 * upload.idleTimeout (docs/design.md §7): calls `onIdle` with a
 * `408 request_timeout` error once `progress()` (bytes received so far) has
 * not moved for `ms`, then stops. Checked a few times per timeout, never
 * more than once per 50 ms; `ms` ≤ 0 watches nothing.
 */
export function watchIdle(ms: number, progress: () => number, onIdle: (err: HttpError) => void): { stop(): void } {
  if (ms <= 0) return { stop: () => undefined };
  let last = progress();
  let lastMs = Date.now();
  const timer = setInterval(() => {
    const now = progress();
    if (now !== last) {
      last = now;
      lastMs = Date.now();
      return;
    }
    if (Date.now() - lastMs < ms) return;
    clearInterval(timer);
    onIdle(new HttpError('request_timeout', `The upload sent no byte for ${ms / 1000} s (upload.idleTimeout); it was ended and nothing was stored.`, {
      idleTimeoutSeconds: ms / 1000, receivedBytes: now,
    }));
  }, Math.max(50, Math.min(1000, ms / 4)));
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
