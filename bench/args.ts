/** Command-line helpers shared by the bench entry points (run.ts, floor.ts). */

/** Prints `text` and exits 0, or prints `error` and `text` to stderr (prefixed with `program`) and exits 2. */
export function exitWithUsage(program: string, text: string, error?: string): never {
  if (error) { process.stderr.write(`${program}: ${error}\n${text}\n`); process.exit(2); }
  process.stdout.write(`${text}\n`);
  process.exit(0);
}

/** `text` as a positive integer, or `fail` with a sentence naming the option. */
export function positiveInt(name: string, text: string, fail: (error: string) => never): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) fail(`${name} must be a positive integer`);
  return n;
}
