/** Exit codes shared by the commands (docs/design.md §12, docs/operations.md; 66 and 78 are sysexits' EX_NOINPUT and EX_CONFIG). */
export const EXIT = { ok: 0, failure: 1, usage: 2, lockHeld: 3, noDataDir: 66, config: 78 } as const;

/** Ops commands run in their own process: a memory engine's files live only inside the server's. */
export function refuseMemoryEngine(config: { storage: { engine: string } }, command: string): void {
  if (config.storage.engine === 'memory') {
    fail(`${command}: storage.engine is "memory"; its files live only inside the serving process, so there is nothing here to ${command}`, EXIT.usage);
  }
}

/** Prints `nanocdn: message` to stderr and exits. */
export function fail(message: string, code: number): never {
  process.stderr.write(`nanocdn: ${message}\n`);
  process.exit(code);
}
