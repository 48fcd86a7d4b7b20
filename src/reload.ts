import type { Config } from './config/schema.js';
import type { NodeContext } from './context.js';

/** What SIGHUP applies to a running node; every other change waits for a restart. */
export const RELOADED_KEYS = ['logLevel', 'auth.tokens', 'auth.trustedNetworks', 'classes'] as const;

/** Key paths (two levels: `auth.tokens`, `port`) whose values differ. */
function changedKeys(before: Config, after: Config): string[] {
  const changed: string[] = [];
  const a = before as unknown as Record<string, unknown>;
  const b = after as unknown as Record<string, unknown>;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[key];
    const y = b[key];
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    const nested = key !== 'classes' && typeof x === 'object' && x !== null && !Array.isArray(x) && typeof y === 'object' && y !== null;
    if (!nested) { changed.push(key); continue; }
    const xs = x as Record<string, unknown>;
    const ys = y as Record<string, unknown>;
    for (const inner of new Set([...Object.keys(xs), ...Object.keys(ys)])) {
      if (JSON.stringify(xs[inner]) !== JSON.stringify(ys[inner])) changed.push(`${key}.${inner}`);
    }
  }
  return changed;
}

/**
 * Applies a new, validated configuration to a running node without
 * touching a connection: the log level, tokens and trusted networks (from
 * the next request on) and the storage classes (new uploads and the next
 * eviction run; stored files keep their class). Returns what changed.
 */
export function applyReload(ctx: Pick<NodeContext, 'logger' | 'auth' | 'classifier'>, before: Config, after: Config): { applied: string[]; needsRestart: string[] } {
  const changed = changedKeys(before, after);
  const reloaded = new Set<string>(RELOADED_KEYS);
  ctx.logger.level = after.logLevel;
  ctx.auth.replace(after.auth.tokens, after.auth.trustedNetworks);
  ctx.classifier.replace(after.classes);
  return { applied: changed.filter((key) => reloaded.has(key)), needsRestart: changed.filter((key) => !reloaded.has(key)) };
}
