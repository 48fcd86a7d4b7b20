/**
 * Summarizes a V8 .cpuprofile (from `npm run bench -- --profile`):
 * self time by function and by package/file, and total (inclusive) time of
 * the node's own functions, so the read path's costs can be named.
 *
 *   node dist/bench/cpuprofile.js [--top N] bench/results/profile-<time>/*.cpuprofile
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

function main(): void {
  const args = process.argv.slice(2);
  let top = 25;
  const topAt = args.indexOf('--top');
  if (topAt >= 0) top = Number(args.splice(topAt, 2)[1]);
  if (args.length === 0 || !(top > 0)) { process.stderr.write('usage: node dist/bench/cpuprofile.js [--top N] <file.cpuprofile>...\n'); process.exit(2); }
  for (const path of args) summarize(path, top);
}

function summarize(path: string, top: number): void {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idleUs = [...selfUs].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((a, [, us]) => a + us, 0);
  const busyUs = totalUs - idleUs;

  const fn = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  const selfByFn = new Map<string, number>();
  const selfByFile = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)') continue;
    add(selfByFn, fn(n), us);
    add(selfByFile, pkg(n.callFrame.url), us);
    // Inclusive time: every distinct frame on the stack gets the sample once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const key = fn(byId.get(cur)!);
      if (!seen.has(key)) { seen.add(key); add(inclusive, key, us); }
    }
  }
  const pct = (us: number) => `${((100 * us) / busyUs).toFixed(1).padStart(5)}%`;
  const print = (title: string, map: Map<string, number>, filter: (k: string) => boolean = () => true) => {
    process.stdout.write(`\n${title}\n`);
    for (const [key, us] of [...map].filter(([k]) => filter(k)).sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`  ${pct(us)}  ${key}\n`);
    }
  };
  process.stdout.write(`${path}: ${(busyUs / 1e6).toFixed(2)} s busy of ${(totalUs / 1e6).toFixed(2)} s profiled (percentages of busy time)\n`);
  print('self time by package / file', selfByFile);
  print('self time by function', selfByFn);
  print('inclusive time, the node\'s own code and express/send', inclusive, (k) => /dist\/src|express|send|router|winston|prom-client|better-sqlite3/.test(k));
}

function add(map: Map<string, number>, key: string, us: number): void {
  map.set(key, (map.get(key) ?? 0) + us);
}

function short(url: string): string {
  return url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, 'dist/');
}

/** "express", "winston", "dist/src/http/...", "node:internal/..." or "(native)". */
function pkg(url: string): string {
  if (!url) return '(native / gc / program)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.includes('/dist/')) return short(url);
  return url.startsWith('node:') ? url.split('/').slice(0, 2).join('/') : url;
}

// A closed pipe (| head) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(0); throw err; });
main();
