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
 *
 * `--initial-old-space-size=64`: even without the reducer, V8 kept the old
 * generation's limit just above what was live (~16 MB) and collected it ~8
 * times a second (up to 15) for as long as uploads came, at 16.7 MB
 * (median), freeing ~0.5 MB each time (`--trace-gc`: 186 mark-compacts in
 * 24 s of PUTs; 2 with the flag, at ~39 MB). A 1.6 MB upload cost 2.7–5.5
 * ms of user CPU, the most when the node had idled before (workers=1,
 * upload-cpu A/B with nginx); with the flag 2.7–3.2, whatever came before.
 * CPU per upload: workers=1 4.77 ms median against 6.39, workers=auto 5.97
 * against 7.44 (bench/README.md). The price: a collection waits for ~40 MB
 * of heap instead of ~17 MB (RSS after a 10 s burst 130 MB against 114 MB;
 * idle +2–4 MB).
 */
export const NODE_FLAGS: readonly string[] = ['--no-memory-reducer', '--initial-old-space-size=64'];

/** `--name=value` → `--name`. */
const nameOf = (flag: string) => flag.split('=')[0];

/** `execArgv` with every flag of NODE_FLAGS it lacks added (one given with another value stays as given). */
export function withNodeFlags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map(nameOf));
  return [...execArgv, ...NODE_FLAGS.filter((flag) => !given.has(nameOf(flag)))];
}
