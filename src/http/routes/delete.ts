import type { Router } from 'express';
import express from 'express';
import { HttpError } from '../../errors.js';
import { parseEncodedName } from '../../names.js';
import type { NodeContext } from '../../context.js';
import { removeFile } from '../../remove-file.js';

/** DELETE /<name>: 204, or 404 when absent (src/remove-file.ts: the file goes first; the index follows). */
export function deleteRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  router.delete(/^\/.+$/, async (req, res) => {
    const principal = ctx.auth.require(req);
    const stored = parseEncodedName(req.path.slice(1));
    res.locals.name = stored.name;
    res.locals.tenant = stored.tenant;
    ctx.auth.authorize(principal, { op: 'delete', tenant: stored.tenant });
    // A token limited to some classes deletes only files of those classes (the class a file got at upload).
    if (ctx.auth.restrictsClasses(principal)) {
      const row = await ctx.index.files.get(stored.name);
      if (row) ctx.auth.authorize(principal, { op: 'delete', tenant: stored.tenant, cls: row.class });
    }
    if (!(await removeFile({ ...ctx, files: ctx.index.files }, stored))) throw new HttpError('not_found', undefined, { name: stored.name });
    res.status(204).end();
  });
  return router;
}
