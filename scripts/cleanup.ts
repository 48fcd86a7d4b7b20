#!/usr/bin/env node
/**
 * `npm run cleanup -- [options]`: the ops entry point for `nanocdn cleanup`.
 * Thin on purpose: the same command parses the arguments and calls the
 * eviction engine (src/commands/cleanup.ts, src/eviction/evictor.ts).
 */
import { cleanupCommand } from '../src/commands/cleanup.js';
import { EXIT, fail } from '../src/commands/exit-codes.js';

cleanupCommand().name('npm run cleanup --').parseAsync(process.argv)
  .catch((err: unknown) => fail((err as Error)?.stack ?? String(err), EXIT.failure));
