import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Router } from 'express';
import express from 'express';
import type { NodeContext } from '../../context.js';
import { monitoringAccess } from '../monitoring-access.js';

/** The page and its two assets, from static/ of the package; no build step (docs/status-page.md). */
const ASSETS = {
  '/status': { file: 'status.html', type: 'text/html; charset=utf-8' },
  '/status/status.js': { file: 'status.js', type: 'text/javascript; charset=utf-8' },
  '/status/status.css': { file: 'status.css', type: 'text/css; charset=utf-8' },
} as const;

/** Only the node itself: no inline script, no other origin, no framing. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * GET /status: the HTML status page for the person on call (docs/status-page.md),
 * under the same access rule as /usage. It draws itself from /usage and
 * /usage/history in the browser.
 */
export function statusRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  const dir = staticDir();
  for (const [route, asset] of Object.entries(ASSETS)) {
    const body = readFileSync(path.join(dir, asset.file));
    router.get(route, monitoringAccess(ctx), (_req, res) => {
      res.set({
        'Content-Type': asset.type, 'Cache-Control': 'no-cache', 'Content-Security-Policy': CSP,
        'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer',
      });
      res.send(body);
    });
  }
  return router;
}

/** static/ of the package, found from src/ (tests) and dist/src/ (built). */
function staticDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'static');
    try {
      readFileSync(path.join(candidate, 'status.html'));
      return candidate;
    } catch { /* not here */ }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('static/status.html not found next to the package');
    dir = parent;
  }
}
