import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand,
  UploadPartCommand, type CompletedPart, type S3Client,
} from '@aws-sdk/client-s3';

/** S3's smallest part (all but the last); Swift's s3api enforces it too. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;

export interface PutStreamOptions {
  bucket: string;
  key: string;
  /** Bytes per part; a body smaller than one part is a single PutObject. */
  partBytes: number;
  /** Parts uploading at once (memory: about (queue + 1) × partBytes). */
  queue: number;
  signal: AbortSignal;
  /** Called with every chunk's length as it is read (in-flight accounting). */
  onBytes?: (bytes: number) => void;
  /** Called once the store gave a multipart upload id (recorded for crash cleanup). */
  onUploadId?: (uploadId: string) => Promise<void> | void;
}

/**
 * Streams a body to one key, never holding more than a few parts in memory:
 * one PutObject (with Content-Length, so a full store refuses it up front)
 * when the body fits in one part, else a multipart upload. Like
 * @aws-sdk/lib-storage's Upload, but every request carries the abort signal
 * and, on any failure or abort, the multipart upload is aborted *before*
 * this returns, so no orphaned parts outlive a failed write.
 */
export async function putStream(client: S3Client, body: Readable, options: PutStreamOptions): Promise<{ size: number }> {
  const { signal } = options;
  signal.throwIfAborted();
  const onAbort = () => body.destroy(abortError());
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const parts = chunks(body, options.partBytes, options.onBytes);
    const first = await parts.next();
    const second = first.done ? first : await parts.next();
    if (second.done) {
      const data = first.done ? Buffer.alloc(0) : first.value;
      await client.send(new PutObjectCommand({
        Bucket: options.bucket, Key: options.key, Body: data, ContentLength: data.length,
      }), { abortSignal: signal });
      return { size: data.length };
    }
    return await multipart(client, options, [first.value as Buffer, second.value], parts);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

async function multipart(client: S3Client, options: PutStreamOptions, head: Buffer[], rest: AsyncGenerator<Buffer>): Promise<{ size: number }> {
  const { bucket, key, signal } = options;
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
  const uploadId = created.UploadId!;
  await options.onUploadId?.(uploadId);
  const done: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  // Parts stop at the first failure; the others are cancelled with it.
  const parts = new AbortController();
  const stop = () => parts.abort(signal.reason);
  signal.addEventListener('abort', stop, { once: true });
  let failure: unknown;
  let size = 0;
  const send = (data: Buffer, partNumber: number) => {
    const task = client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: data, ContentLength: data.length }),
      { abortSignal: parts.signal })
      .then((out) => { done.push({ PartNumber: partNumber, ETag: out.ETag }); })
      .catch((err: unknown) => { failure ??= err; parts.abort(err); })
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
  };
  try {
    let partNumber = 0;
    const all = (async function* () { yield* head; yield* rest; })();
    for await (const data of all) {
      if (failure !== undefined) break;
      size += data.length;
      send(data, ++partNumber);
      while (inFlight.size >= options.queue) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure as Error;
    signal.throwIfAborted();
    done.sort((a, b) => a.PartNumber! - b.PartNumber!);
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: done } }),
      { abortSignal: signal });
    return { size };
  } catch (err) {
    parts.abort(err);
    await Promise.allSettled(inFlight);
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
    throw failure ?? err;
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

/** Re-chunks a stream into buffers of exactly `size` bytes (the last may be shorter, and is omitted when empty). */
async function* chunks(body: Readable, size: number, onBytes?: (bytes: number) => void): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of body) {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    onBytes?.(buf.length);
    while (pendingBytes + buf.length >= size) {
      const take = size - pendingBytes;
      pending.push(buf.subarray(0, take));
      yield Buffer.concat(pending, size);
      pending = [];
      pendingBytes = 0;
      buf = buf.subarray(take);
    }
    if (buf.length > 0) {
      pending.push(buf);
      pendingBytes += buf.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}

function abortError(): Error {
  return Object.assign(new Error('The write was aborted.'), { name: 'AbortError' });
}
