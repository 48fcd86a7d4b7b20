/** Exit codes shared by the commands (docs/design.md §12). */
export const EXIT = { ok: 0, failure: 1, usage: 2, lockHeld: 3, config: 78 } as const;

/** Prints `nanocdn: message` to stderr and exits. */
export function fail(message: string, code: number): never {
  process.stderr.write(`nanocdn: ${message}\n`);
  process.exit(code);
}
