/** The `nanocdn` program, loaded by src/cli.ts once the V8 settings are in place. */
import { Command } from 'commander';
import { ConfigError } from './config/load.js';
import { HttpError } from './errors.js';
import { EXIT, fail } from './commands/exit-codes.js';
import { registerServe } from './commands/serve.js';
import { registerSign } from './commands/sign.js';
import { registerReindex } from './commands/reindex.js';
import { registerCleanup } from './commands/cleanup.js';
import { registerConfig } from './commands/config-check.js';
import { registerScrub } from './commands/scrub.js';
import { VERSION } from './package-root.js';

// `nanocdn … | head`: a reader that went away is not an error of ours (EPIPE).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
    throw err;
  });
}

/** The one `nanocdn` binary: each command lives in src/commands/<name>.ts. */
const program = new Command('nanocdn')
  .description('Self-hosted HTTP file storage node')
  .version(VERSION, '-V, --version', 'print the version')
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage));

registerServe(program);
registerSign(program);
registerReindex(program);
registerCleanup(program);
registerScrub(program);
registerConfig(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) fail(err.message, EXIT.config);
  if (err instanceof HttpError) fail(err.message, EXIT.usage);
  // A system error at start (EADDRINUSE, ENOTDIR, EACCES…): its message says it all, no stack.
  if (typeof (err as NodeJS.ErrnoException)?.code === 'string' && /^E[A-Z]+$/.test((err as NodeJS.ErrnoException).code!)) {
    fail(`cannot start: ${(err as Error).message}`, EXIT.failure);
  }
  fail((err as Error)?.stack ?? String(err), EXIT.failure);
});
