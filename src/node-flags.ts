/**
 * Flags the node's processes need on their command line: V8 reads them when
 * it creates the heap, so `v8.setFlagsFromString` (src/young-generation.ts)
 * comes too late for them. They are on the first line of the `nanocdn`
 * binary (src/cli.ts, `#!/usr/bin/env -S node …`) and in `npm start`; the
 * clustered primary passes them to its workers however it was started, and
 * `npm run bench` starts its nodes with them (test/unit/node-flags.test.ts
 * keeps these places equal).
 *
 * `--no-memory-reducer`: after some seconds without load, V8's memory
 * reducer shrinks the heap and from then on lets it grow only slowly, so the
 * next burst of uploads ran with the old generation collected 10–20 times a
 * second instead of 1–6: a 1.6 MB upload cost ~60 % more user CPU for as
 * long as the burst lasted (workers=1: 5.6–6.3 ms against 3.4–3.9 before the
 * pause; with the flag 4.0–4.8; workers=auto: 8.3–9.2 ms of CPU per upload
 * against 6.8–8.4 with the flag; bench/README.md, upload-cpu). The price:
 * an idle node keeps the heap its last load left (measured +1.5 MB RSS).
 */
export const NODE_FLAGS: readonly string[] = ['--no-memory-reducer'];

/** `execArgv` with every flag of NODE_FLAGS it lacks added. */
export function withNodeFlags(execArgv: readonly string[]): string[] {
  return [...execArgv, ...NODE_FLAGS.filter((flag) => !execArgv.includes(flag))];
}
