import { expect } from 'vitest';
import type { TestNode } from '../helpers/test-node.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { parseName } from '../../src/names.js';
import type { NodeApp } from '../../src/http/app.js';

/**
 * Helpers for HTTP tests that supertest cannot express: paths sent byte for
 * byte (no URL normalisation), bodies streamed chunk by chunk, responses
 * read before the body is sent. Plus what an engine holds (any engine) and
 * a walk of a data dir (fs).
 */

export interface Listening {
  readonly port: number;
  close(): Promise<void>;
}

/** The app on a loopback port (for raw requests). */
export async function listen(app: NodeApp): Promise<Listening> {
  const server = http.createServer(app);
  // As src/server.ts does: the route decides when to send 100 Continue.
  server.on('checkContinue', (req, res) => server.emit('request', req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: Record<string, unknown>;
}

export interface RawRequest {
  method: string;
  path: string;
  headers?: Record<string, string | number>;
  /** A Buffer is sent whole (after 100 Continue when the headers say `Expect: 100-continue`); chunks are sent one by one (chunked unless content-length is set), awaiting `between` before each. */
  body?: Buffer | Buffer[];
  between?: () => Promise<void>;
}

/** Sends a request exactly as given; resolves with the whole response. Write errors after a response are ignored. */
export function rawRequest(port: number, request: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let responded = false;
    const req = http.request({ host: '127.0.0.1', port, method: request.method, path: request.path, headers: request.headers, agent: false }, (res) => {
      responded = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        let json: Record<string, unknown> = {};
        try { json = JSON.parse(body.toString()) as Record<string, unknown>; } catch { /* not JSON */ }
        resolve({ status: res.statusCode!, headers: res.headers, body, json });
        req.destroy();
      });
    });
    req.on('error', (err) => { if (!responded) reject(err); });
    const { body } = request;
    if (body === undefined) { req.end(); return; }
    const expectsContinue = Object.entries(request.headers ?? {}).some(([k, v]) => k.toLowerCase() === 'expect' && String(v).toLowerCase() === '100-continue');
    if (Buffer.isBuffer(body) && expectsContinue) {
      // The body goes only after the server's 100 Continue; a refusal before it means the body is never sent.
      req.on('continue', () => req.end(body));
      req.flushHeaders();
      return;
    }
    if (Buffer.isBuffer(body)) { req.end(body); return; }
    void (async () => {
      for (const chunk of body) {
        if (request.between) await request.between();
        if (responded || req.destroyed) return;
        req.write(chunk);
      }
      if (!responded && !req.destroyed) req.end();
    })();
  });
}

/** Sends only the headers and resolves with the response, never sending a body byte. */
export function headersOnly(port: number, request: Omit<RawRequest, 'body'>): Promise<RawResponse & { bodySent: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: request.method, path: request.path, headers: request.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        let json: Record<string, unknown> = {};
        try { json = JSON.parse(body.toString()) as Record<string, unknown>; } catch { /* not JSON */ }
        resolve({ status: res.statusCode!, headers: res.headers, body, json, bodySent: false });
        req.destroy();
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

/** Every file under dir, relative, sorted (directories are walked, not listed). */
export async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string) => {
    for (const entry of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await visit(child);
      else out.push(child);
    }
  };
  await visit('');
  return out.sort();
}

/** Every entry (files and directories) under dir, relative, sorted. */
export async function walkAll(dir: string): Promise<string[]> {
  const entries = await fsp.readdir(dir, { recursive: true });
  return entries.map(String).sort();
}

/** Entries in <data>/tmp. */
export async function tmpEntries(dataDir: string): Promise<string[]> {
  return fsp.readdir(path.join(dataDir, 'tmp'));
}

export const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Entries of the engine's spool (tmp/ for fs, writes in flight for memory). */
export async function spoolEntries(node: TestNode): Promise<number> {
  return (await node.ctx.storage.tmpStats(Date.now())).files;
}

/** Whether the engine holds an object under name (any engine; fs: files/<name>). */
export async function isStored(node: TestNode, name: string): Promise<boolean> {
  return (await node.ctx.storage.stat(parseName(name))) !== null;
}

/** The bytes the engine holds under name (fs: files/<name>). */
export async function storedBytes(node: TestNode, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await node.ctx.storage.open(parseName(name))) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every object the engine holds, sorted (fs: every file under files/, valid name or not). */
export async function storedNames(node: TestNode): Promise<string[]> {
  if (node.engine === 'fs') return walkFiles(path.join(node.dataDir, 'files'));
  const names: string[] = [];
  for await (const object of node.ctx.storage.list()) names.push(object.name);
  return names.sort();
}

/** After any request, whatever its outcome: no spool entry, no reservation, no upload in flight. */
export async function expectCleanWritePath(node: TestNode): Promise<void> {
  expect(await spoolEntries(node)).toBe(0);
  expect(node.ctx.guard.snapshot().reservedBytes).toBe(0);
  expect(node.ctx.uploader.inflight).toBe(0);
}
