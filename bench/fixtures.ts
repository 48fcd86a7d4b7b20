import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Target } from './targets.js';

/**
 * Files the bench reads and writes: the GET fixtures (uploaded through the
 * node's API for the node, written into the document root for nginx and the
 * floor) and the files a PUT run leaves behind (checked, then removed).
 */

/** Uploads `body` as `name`: through the API for a node, straight into the root for plain nginx and the floor. */
export async function placeFixture(target: Target, name: string, body: Buffer, token: string): Promise<void> {
  if (!indexed(target)) {
    const path = join(target.filesDir, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, body);
    return;
  }
  const res = await call(`${target.url}${target.putPath(name)}`, {
    method: 'PUT', body: new Uint8Array(body), headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/octet-stream' },
  });
  const text = await res.text();
  // 409: already there from an earlier round or a shared data dir.
  if (res.status !== 201 && res.status !== 409) throw new Error(`PUT ${name} to ${target.label}: HTTP ${res.status} ${text}`);
}

/** One GET as wrk will send it: fails unless it is a 200 with the whole file. */
export async function checkGet(target: Target, name: string, size: number, headers: Record<string, string>): Promise<void> {
  const res = await call(`${target.url}/${name}`, { headers });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200 || body.length !== size) {
    throw new Error(`GET /${name} from ${target.label}: HTTP ${res.status}, ${body.length} bytes (expected 200, ${size}): ${body.subarray(0, 200).toString()}`);
  }
}

/** One PUT as wrk will send it (the name is then deleted again). */
export async function checkPut(target: Target, name: string, body: Buffer, headers: Record<string, string>): Promise<void> {
  const res = await call(`${target.url}${target.putPath(name)}`, { method: 'PUT', body: new Uint8Array(body), headers });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT ${target.putPath(name)} to ${target.label}: HTTP ${res.status} ${text.slice(0, 300)}`);
}

export interface StoredCheck {
  files: number;
  wrongSize: number;
}

/** Counts the files a PUT run stored under `dir` and how many have the wrong size. */
export function countStored(dir: string, size: number): StoredCheck {
  let files = 0;
  let wrongSize = 0;
  let entries: string[];
  try { entries = readdirSync(dir); } catch { return { files: 0, wrongSize: 0 }; }
  for (const entry of entries) {
    files++;
    if (statSync(join(dir, entry)).size !== size) wrongSize++;
  }
  return { files, wrongSize };
}

/**
 * Removes what a PUT run stored. A node's files are deleted through its API,
 * so its index and usage stay true; then the directory goes, and `sync`
 * writes back what is left so the next run does not pay for this one's dirty pages.
 */
export async function removeStored(target: Target, namePrefix: string, token: string): Promise<void> {
  const dir = join(target.filesDir, namePrefix);
  if (indexed(target)) {
    let entries: string[] = [];
    try { entries = readdirSync(dir); } catch { /* nothing stored */ }
    const queue = entries.map((entry) => `${namePrefix}/${entry}`);
    const worker = async () => {
      for (let name = queue.pop(); name !== undefined; name = queue.pop()) {
        const res = await call(`${target.url}/${name}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
        await res.arrayBuffer();
        if (res.status !== 204 && res.status !== 404) throw new Error(`DELETE /${name} on ${target.label}: HTTP ${res.status}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  }
  // Uploads the server finished after wrk hung up may still be landing (for seconds on a busy machine): retry.
  for (let attempt = 1; ; attempt++) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || attempt === 30) throw err;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  spawnSync('sync', { timeout: 30_000 });
}

/** A node (alone or behind the front) keeps an index of its files; plain nginx and the floor have only the directory. */
function indexed(target: Target): boolean {
  return target.kind === 'node' || target.kind === 'front';
}

/** fetch, with the URL and the underlying cause in the error ("fetch failed" alone says nothing). */
async function call(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const cause = (err as Error).cause as (Error & { code?: string }) | undefined;
    throw new Error(`${init?.method ?? 'GET'} ${url}: ${(err as Error).message}${cause ? ` (${cause.code ?? ''} ${cause.message})` : ''}`, { cause: err });
  }
}
