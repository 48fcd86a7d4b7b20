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
    ctx.auth.require(req);
    const stored = parseEncodedName(req.path.slice(1));
    res.locals.name = stored.name;
    res.locals.tenant = stored.tenant;
    if (!(await removeFile({ ...ctx, files: ctx.index.files }, stored))) throw new HttpError('not_found', undefined, { name: stored.name });
    res.status(204).end();
  });
  return router;
}
