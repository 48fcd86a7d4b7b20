import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpError } from '../errors.js';
import type { StoredName } from '../names.js';
import type { ByteRange, ObjectInfo, Storage, TmpStats } from './storage.js';

/** Size of the chunks open() hands out, so a large object streams with backpressure. */
const READ_CHUNK = 64 * 1024;

interface MemoryObject {
  readonly data: Buffer;
  readonly mtimeMs: number;
}

/** A write in flight: what tmpStats() reports as the spool. */
interface LiveWrite {
  readonly startedMs: number;
  bytes: number;
}

/**
 * The memory engine (`storage.engine: "memory"`, docs/design.md §9): objects
 * live in this process's memory and are gone when it ends — not durable, for
 * tests and demos. It keeps the contract of every engine: a write collects
 * its body aside and becomes visible only whole, once it ended cleanly, and
 * only if the name is still free (so of two concurrent writes of a name the
 * first to finish wins and the other fails with `exists`); an abort or a
 * failing source drops what it collected. The spool is the set of writes in
 * flight: all live, so a sweep never finds anything to remove (nothing can
 * be left behind by a dead process).
 */
export class MemoryStorage implements Storage {
  readonly kind = 'memory' as const;
  readonly tmpHasOwners = false;
  private readonly objects = new Map<string, MemoryObject>();
  private readonly live = new Set<LiveWrite>();

  async write(name: StoredName, body: Readable, signal: AbortSignal): Promise<{ size: number }> {
    const entry: LiveWrite = { startedMs: Date.now(), bytes: 0 };
    const chunks: Buffer[] = [];
    this.live.add(entry);
    try {
      const collect = new Writable({
        write(chunk: Buffer, _encoding, done) {
          chunks.push(chunk);
          entry.bytes += chunk.length;
          done();
        },
      });
      await pipeline(body, collect, { signal });
      // Checked after the body, like link() in the fs engine: create-only, never a replace.
      if (this.objects.has(name.name)) throw new HttpError('exists', undefined, { name: name.name });
      const data = Buffer.concat(chunks, entry.bytes);
      this.objects.set(name.name, { data, mtimeMs: Date.now() });
      return { size: data.length };
    } finally {
      this.live.delete(entry);
    }
  }

  async stat(name: StoredName): Promise<ObjectInfo | null> {
    const object = this.objects.get(name.name);
    return object ? { name: name.name, size: object.data.length, mtimeMs: object.mtimeMs } : null;
  }

  async open(name: StoredName, range?: ByteRange): Promise<Readable> {
    const object = this.objects.get(name.name);
    if (!object) throw new HttpError('not_found', undefined, { name: name.name });
    // An inclusive range, clamped to the object like a file read stream.
    const start = Math.min(range?.start ?? 0, object.data.length);
    const end = Math.max(start, Math.min((range?.end ?? Infinity) + 1, object.data.length));
    return Readable.from(chunksOf(object.data, start, end), { objectMode: false });
  }

  async remove(name: StoredName): Promise<boolean> {
    return this.objects.delete(name.name);
  }

  async *list(): AsyncIterable<ObjectInfo> {
    // A snapshot: removals during the listing do not disturb it.
    for (const [name, object] of [...this.objects]) {
      yield { name, size: object.data.length, mtimeMs: object.mtimeMs };
    }
  }

  async tmpStats(now: number): Promise<TmpStats> {
    let bytes = 0;
    let oldest: number | null = null;
    for (const write of this.live) {
      bytes += write.bytes;
      oldest = oldest === null ? write.startedMs : Math.min(oldest, write.startedMs);
    }
    return { files: this.live.size, bytes, oldestAgeMs: oldest === null ? null : Math.max(0, now - oldest) };
  }

  async sweepTmp(): Promise<{ files: number; bytes: number }> {
    // Every entry of this spool belongs to a live write, and live writes are never swept.
    return { files: 0, bytes: 0 };
  }

  async check(): Promise<void> {
    // Memory is always usable; nothing to probe.
  }

  async close(): Promise<void> {
    // The objects stay: a test may open a node on the same instance again.
  }
}

function* chunksOf(data: Buffer, start: number, end: number): Generator<Buffer> {
  for (let offset = start; offset < end; offset += READ_CHUNK) {
    yield data.subarray(offset, Math.min(offset + READ_CHUNK, end));
  }
}
