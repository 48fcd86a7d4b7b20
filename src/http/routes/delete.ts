import type { Router } from 'express';
import express from 'express';
import { HttpError } from '../../errors.js';
import { parseEncodedName } from '../../names.js';
import type { NodeContext } from '../../context.js';

/** DELETE /<name>: 204, or 404 when absent. The file goes first; the index follows. */
export function deleteRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  router.delete(/^\/.+$/, async (req, res) => {
    ctx.auth.require(req);
    const stored = parseEncodedName(req.path.slice(1));
    res.locals.name = stored.name;
    res.locals.tenant = stored.tenant;
    const removed = await ctx.storage.remove(stored);
    try {
      ctx.index.remove(stored.name);
    } catch (err) {
      // A full disk may refuse even this write; the file is gone, reconcile drops the row later.
      ctx.logger.error('index delete failed; reconcile will catch up', { name: stored.name, error: (err as Error).message });
    }
    ctx.access.forget(stored.name);
    if (!removed) throw new HttpError('not_found', undefined, { name: stored.name });
    ctx.guard.noteFreed();
    res.status(204).end();
  });
  return router;
}
