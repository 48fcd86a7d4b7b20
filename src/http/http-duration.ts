import type { Request, RequestHandler } from 'express';
import type { NodeMetrics, RouteLabel } from '../monitoring/metrics.js';

/** Maps a request to one of the fixed route labels (never the path: names would explode cardinality). */
function routeLabel(req: Request): RouteLabel {
  const p = req.path;
  if (p.startsWith('/upload/')) return 'upload';
  if (p === '/usage' || p === '/usage/history') return 'usage';
  if (p === '/status' || p.startsWith('/status/')) return 'status';
  if (p === '/metrics') return 'metrics';
  if (p === '/healthz' || p === '/readyz') return 'health';
  if (p === '/admin' || p.startsWith('/admin/')) return 'admin';
  if (req.method === 'DELETE') return 'delete';
  if (req.method === 'GET' || req.method === 'HEAD') return 'download';
  return 'other';
}

/** Observes each request's duration, by route label and status class, when the response ends or the client goes away. */
export function httpDuration(metrics: NodeMetrics): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const route = routeLabel(req);
    const done = () => metrics.observeRequest(route, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
    res.once('close', done);
    next();
  };
}
