import type { Config } from './schema.js';
import { tokenId } from '../token-id.js';

const HIDDEN = '********';

/** The configuration with its secrets replaced: tokens by their ids, secrets by stars (null stays null). */
export function maskSecrets(config: Config): unknown {
  const copy = structuredClone(config) as Config & { auth: { signingSecret: string | null } };
  copy.auth.tokens = config.auth.tokens.map((entry) => (typeof entry === 'string' ? tokenId(entry) : { ...entry, token: tokenId(entry.token) }));
  if (copy.auth.signingSecret !== null) copy.auth.signingSecret = HIDDEN;
  if (copy.storage.s3.secretAccessKey !== null) (copy.storage.s3 as { secretAccessKey: string | null }).secretAccessKey = HIDDEN;
  if (copy.index.url !== null) (copy.index as { url: string | null }).url = maskUrlPassword(copy.index.url);
  return copy;
}

/** A database URL with its password (in the user part or a `password` parameter) replaced by stars. */
export function maskUrlPassword(url: string): string {
  if (!URL.canParse(url)) return HIDDEN;
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = HIDDEN;
  if (parsed.searchParams.has('password')) parsed.searchParams.set('password', HIDDEN);
  return parsed.toString();
}
