import { setMaxListeners } from 'node:events';
import type { Readable } from 'node:stream';
import { HttpError, isHttpError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { StoredName } from '../names.js';
import type { Storage } from '../storage/storage.js';
import type { FilesPart } from '../index/index.js';
import type { DiskGuard } from '../disk/disk-guard.js';
import type { Hold, Ledger } from '../accounting/ledger.js';
import type { Classifier, StorageClass } from '../classes.js';
import { formatBytes } from '../config/units.js';
import { UploadMeter } from './upload-meter.js';
import { watchIdle } from './idle-watch.js';
import type { RetiredNames } from '../retired-names.js';

/** Everything an upload declares before its body is read. */
export interface UploadRequest {
  stored: StoredName;
  /** Content-Length of the body (or of the whole multipart request); null when chunked. */
  declaredBytes: number | null;
  expectedSha256?: string;
  storageClass?: string;
  expireAfterMs?: number;
  /** The client waits for 100 Continue before its body: the ledger decides before it (src/accounting/ledger.ts). */
  decideBeforeBody?: boolean;
}

export interface UploadResult {
  name: string;
  url: string;
  size: number;
  sha256: string;
}

/** The outcome of an upload, for metrics: created, exists, refused (4xx/507 by policy) or failed. */
export type UploadOutcome = 'created' | 'exists' | 'refused' | 'failed';

/** Receives upload outcomes (metrics). */
export interface UploadObserver {
  uploadFinished(outcome: UploadOutcome, code?: string): void;
  /** The size an upload asks for (declared, within upload.maxBytes; or, without a declaration, what it stored), admitted or not. */
  uploadSized?(bytes: number): void;
}

/** An upload that passed admission and holds its bytes in the ledger. */
export interface Admission {
  readonly request: UploadRequest;
  readonly cls: StorageClass;
  readonly hold: Hold;
  /** The name is retired with the declared bytes: storing them restores it (src/retired-names.ts). */
  readonly restoresRetired: boolean;
}

export interface UploaderDeps {
  storage: Storage;
  files: Pick<FilesPart, 'put'>;
  /** For the figures of a disk-full error; admission goes through the ledger. */
  guard: DiskGuard;
  /** Holds of every upload: disk reserve, tenant quotas, tenant limits (src/accounting/ledger.ts). */
  ledger: Ledger;
  classifier: Classifier;
  logger: Logger;
  now: () => number;
  maxBytes: number;
  /** An upload that sends no byte for this long is ended with 408 request_timeout (0: never). */
  idleTimeoutMs?: number;
  observer?: UploadObserver;
  /** Retired pub names: other bytes under one are refused with 409 name_retired (docs/design.md §2). */
  retired?: Pick<RetiredNames, 'check' | 'restored'>;
}

/**
 * The one write path (docs/design.md §5) for PUT and multipart POST: admission before
 * the body, then stream → meter (hash, size limit, hold) → engine → index.
 */
export class Uploader {
  /** Uploads between store() and its end. */
  private active = 0;
  private readonly shutdown = new AbortController();
  private idleWaiters: (() => void)[] = [];
  /** Set by drain(): new uploads are refused with 503 shutting_down. */
  private closed = false;

  constructor(private readonly deps: UploaderDeps) {
    // Every live upload listens on the one shutdown signal; hundreds at once are normal, not a leak.
    setMaxListeners(0, this.shutdown.signal);
  }

  get inflight(): number {
    return this.active;
  }

  /** Step 1–2: name free, size limit, quota, disk reserve. Throws HttpError; no body byte read. */
  async admit(request: UploadRequest): Promise<Admission> {
    const { deps } = this;
    try {
      if (this.closed) throw new HttpError('shutting_down');
      const cls = deps.classifier.classify(request.stored.name, request.storageClass);
      if (request.declaredBytes !== null && request.declaredBytes > deps.maxBytes) {
        throw new HttpError('upload_too_large', `The upload declares ${formatBytes(request.declaredBytes)}, more than the maximum of ${formatBytes(deps.maxBytes)}.`, {
          maxBytes: deps.maxBytes, declaredBytes: request.declaredBytes,
        });
      }
      if (request.declaredBytes !== null) deps.observer?.uploadSized?.(request.declaredBytes);
      if (await deps.storage.stat(request.stored)) throw this.exists(request.stored);
      // A declared checksum decides it before the body; otherwise the meter asks once the body is hashed.
      const restoresRetired = request.expectedSha256 !== undefined && (await deps.retired?.check(request.stored, request.expectedSha256)) === true;
      const hold = await deps.ledger.admit({ tenant: request.stored.tenant, cls, declaredBytes: request.declaredBytes, decideBeforeBody: request.decideBeforeBody });
      return { request, cls, hold, restoresRetired };
    } catch (err) {
      this.report(err);
      throw err;
    }
  }

  /**
   * Steps 3–5: stream, verify, link into place, index. On failure nothing is
   * visible, and the hold is committed or released on every path.
   * `bodyComplete` (multipart): the file is linked into place only once the
   * whole request body parsed cleanly, so a bad trailing part never makes the
   * name visible, not even for a moment.
   */
  async store(admission: Admission, body: Readable, signal: AbortSignal, options: { bodyComplete?: Promise<void> } = {}): Promise<UploadResult> {
    const { deps } = this;
    const { request, cls, hold } = admission;
    const controller = new AbortController();
    const abort = () => controller.abort(signal.reason);
    const shut = () => controller.abort(new HttpError('shutting_down', 'The node shut down during the upload; nothing was stored. Retry.'));
    signal.addEventListener('abort', abort, { once: true });
    this.shutdown.signal.addEventListener('abort', shut, { once: true });
    this.active++;
    const retired = deps.retired;
    let restoresRetired = admission.restoresRetired;
    const meter = new UploadMeter({
      maxBytes: deps.maxBytes, hold, expectedSha256: request.expectedSha256, bodyComplete: options.bodyComplete,
      // Checked at admission when the checksum was declared (the meter then holds the body to it).
      checkSha256: retired && request.expectedSha256 === undefined
        ? async (sha256) => { restoresRetired = await retired.check(request.stored, sha256); }
        : undefined,
    });
    let stored = false;
    // upload.idleTimeout: every byte the meter sees rearms it; the abort removes the tmp file and frees the holds like any other failure.
    const idle = watchIdle(deps.idleTimeoutMs ?? 0, () => meter.bytes, (err) => controller.abort(err));
    try {
      if (signal.aborted) abort();
      // pipe() does not forward a source error; the meter must fail with it so
      // the engine stops and removes its partial data. (Not pipeline(): on a
      // meter error it would destroy the request before the JSON error is sent.)
      const forwardError = (err: Error) => meter.destroy(err);
      body.once('error', forwardError);
      const { size } = await deps.storage.write(request.stored, body.pipe(meter), controller.signal)
        .finally(() => body.off('error', forwardError));
      const now = deps.now();
      await this.indexSafely(request.stored, () => deps.files.put({
        name: request.stored.name, tenant: request.stored.tenant, class: cls.name, size, sha256: meter.sha256,
        createdMs: now, accessedMs: now, expiresMs: request.expireAfterMs !== undefined ? now + request.expireAfterMs : null,
      }));
      stored = true;
      if (restoresRetired) await deps.retired?.restored(request.stored);
      if (request.declaredBytes === null) deps.observer?.uploadSized?.(size);
      deps.observer?.uploadFinished('created');
      return { name: request.stored.name, url: `/${request.stored.name}`, size, sha256: meter.sha256 };
    } catch (err) {
      body.unpipe(meter);
      meter.destroy();
      const translated = await this.explain(err, controller.signal, admission);
      this.report(translated);
      throw translated;
    } finally {
      // Exactly once on every path: a stored upload keeps its bytes, anything else frees them.
      idle.stop();
      if (stored) hold.commit();
      else hold.release();
      signal.removeEventListener('abort', abort);
      this.shutdown.signal.removeEventListener('abort', shut);
      if (--this.active === 0) this.wakeIdle();
    }
  }

  private exists(stored: StoredName): HttpError {
    return new HttpError('exists', undefined, { name: stored.name, url: `/${stored.name}` }, { Location: `/${stored.name}` });
  }

  /** Maps an abort or engine error to the error the client should see. */
  private async explain(err: unknown, signal: AbortSignal, admission: Admission): Promise<unknown> {
    const { stored } = admission.request;
    if (signal.aborted && isHttpError(signal.reason)) return signal.reason;
    if (signal.aborted || (err as Error)?.name === 'AbortError' || (err as NodeJS.ErrnoException)?.code === 'ECONNRESET' ||
        (err as NodeJS.ErrnoException)?.code === 'ERR_STREAM_PREMATURE_CLOSE') {
      return new HttpError('client_closed');
    }
    if (isHttpError(err) && err.code === 'exists') return this.exists(stored);
    if (isHttpError(err) && err.code === 'insufficient_storage' && err.details.reason) return this.diskFull(err, admission);
    return err;
  }

  /**
   * ENOSPC/EDQUOT in the write itself (the disk filled behind the guard's
   * back): one error line with the path and the free space read now, and a
   * 507 with the same details as an admission refusal.
   */
  private async diskFull(err: HttpError, admission: Admission): Promise<HttpError> {
    const { guard, storage, logger } = this.deps;
    const { stored, declaredBytes } = admission.request;
    const snap = await guard.refresh(true).catch(() => guard.snapshot());
    const path = storage.localPath?.(stored) ?? stored.name;
    logger.error(`disk full during upload (${String(err.details.reason)}): ${path}`, {
      path, name: stored.name, reason: err.details.reason, freeBytes: snap.freeBytes, writtenBytes: admission.hold.written,
    });
    return new HttpError('insufficient_storage', err.message, {
      ...err.details, freeBytes: snap.freeBytes, requiredBytes: (declaredBytes ?? admission.hold.written) + snap.reserveBytes,
      reserveBytes: snap.reserveBytes,
    }, err.headers);
  }

  private report(err: unknown): void {
    if (!this.deps.observer) return;
    if (!isHttpError(err)) { this.deps.observer.uploadFinished('failed'); return; }
    if (err.code === 'exists') this.deps.observer.uploadFinished('exists', err.code);
    else if (err.status >= 500 && err.code !== 'insufficient_storage' && err.code !== 'quota_exceeded') this.deps.observer.uploadFinished('failed', err.code);
    else this.deps.observer.uploadFinished('refused', err.code);
  }

  /**
   * The file is the truth: an index that cannot grow (SQLITE_FULL) is caught
   * up by reconcile later. An index that cannot be reached (a shared
   * database that is down, `store_unavailable`) would leave a stored object
   * no node knows of: the object goes again and the upload answers 503
   * (docs/design.md §15).
   */
  private async indexSafely(stored: StoredName, write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (err) {
      if (isHttpError(err) && err.code === 'store_unavailable') {
        await this.deps.storage.remove(stored).catch((removeErr: unknown) => this.deps.logger.error(
          'the index cannot be reached and the stored object of the upload could not be removed; reconcile will index it', { name: stored.name, error: (removeErr as Error).message }));
        throw err;
      }
      this.deps.logger.error('index write failed; reconcile will catch up', { error: (err as Error).message });
    }
  }

  /** Refuses new uploads; waits up to graceMs for in-flight ones, then aborts them. */
  async drain(graceMs: number): Promise<void> {
    const idle = new Promise<void>((resolve) => {
      if (this.active === 0) resolve();
      else this.idleWaiters.push(resolve);
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), graceMs); });
    this.closed = true;
    const result = await Promise.race([idle, deadline]);
    clearTimeout(timer);
    if (result === 'late') {
      this.shutdown.abort();
      await idle;
    }
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
