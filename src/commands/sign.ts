import type { Command } from 'commander';
import { parseDuration } from '../config/units.js';
import { parseName } from '../names.js';
import { signedQuery } from '../signing.js';
import { EXIT, fail } from './exit-codes.js';
import { configOf, withConfigFlags, type ConfigFlags } from './config-options.js';

export function registerSign(program: Command): void {
  withConfigFlags(program.command('sign'))
    .description('print a signed URL for a name (priv reads without a token)')
    .argument('<name>', 'e.g. priv/acme/invoices/2026-11.pdf')
    .option('--ttl <duration>', 'how long the URL is valid (e.g. 90s, 1h, 7d)', '1h')
    .option('--base <url>', 'prefix of the printed URL, e.g. https://cdn.example.com', '')
    .action((rawName: string, options: ConfigFlags & { ttl: string; base: string }) => {
      const config = configOf(options);
      const secret = config.auth.signingSecret;
      if (!secret) fail('auth.signingSecret is not set (config or NANOCDN_SIGNING_SECRET)', EXIT.usage);
      let name: string;
      let ttlMs: number;
      try { name = parseName(rawName.replace(/^\/+/, '')).name; } catch (err) { fail((err as Error).message, EXIT.usage); }
      try { ttlMs = parseDuration(options.ttl); } catch (err) { fail(`--ttl: ${(err as Error).message}`, EXIT.usage); }
      if (ttlMs > config.auth.maxSignedTtl) {
        fail(`--ttl: ${options.ttl} is longer than auth.maxSignedTtl (${config.auth.maxSignedTtl / 1000} s); the node would refuse the URL`, EXIT.usage);
      }
      const expires = Math.floor((Date.now() + ttlMs) / 1000);
      process.stdout.write(`${options.base.replace(/\/+$/, '')}/${name}?${signedQuery(secret, name, expires)}\n`);
    });
}
