import type { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';
import type { Request, RequestHandler } from 'express';
import type { Options, StorageEngine } from 'multer';
import { HttpError, isHttpError } from '../errors.js';
import { parseName, type StoredName } from '../names.js';
import type { Admission, Uploader } from './uploader.js';

type FileInfo = Parameters<StorageEngine['_handleFile']>[1];
type Done = Parameters<StorageEngine['_handleFile']>[2];

/**
 * multer StorageEngine that hands the part "file" to the one write path:
 * same admission (done by the route before multer runs), same meter, same
 * engine. Nothing is buffered in memory.
 */
export class MultipartStorageEngine implements StorageEngine {
  constructor(private readonly uploader: Uploader, private readonly removeStored: (stored: StoredName) => Promise<void>) {}

  _handleFile(req: Request, file: FileInfo, done: Done): void {
    const res = req.res!;
    const admission = res.locals.admission as Admission;
    const signal = res.locals.signal as AbortSignal;
    // A malformed body errors the part's stream, which .pipe() does not pass
    // on: abort the write so it does not hang with its tmp file open.
    const malformed = new AbortController();
    file.stream.once('error', (err: Error) => {
      malformed.abort(new HttpError('invalid_request', `Malformed multipart body: ${err.message}.`));
    });
    const writing = this.uploader.store(admission, file.stream, AbortSignal.any([signal, malformed.signal]), {
      bodyComplete: res.locals.bodyComplete as Promise<void> | undefined,
    });
    // The route waits for this before answering, so no tmp file outlives the response.
    res.locals.writing = writing.then(() => undefined, () => undefined);
    writing.then(
      (result) => done(null, { size: result.size, result } as Partial<Express.Multer.File>),
      (err: unknown) => {
        file.stream.resume(); // let busboy finish so multer reports our error
        done(err);
      },
    );
  }

  /** multer calls this when a later part fails the request: undo the stored file. */
  _removeFile(_req: Request, file: Express.Multer.File, done: (error: Error | null) => void): void {
    const result = (file as unknown as { result?: { name: string } }).result;
    if (!result) { done(null); return; }
    // The stored name is decoded already: decoding it again would misread a "%" in it.
    Promise.resolve().then(() => this.removeStored(parseName(result.name))).then(() => done(null), (err: unknown) => done(err as Error));
  }
}

/** multer's and busboy's errors as our JSON codes. */
export function multerErrorToHttp(err: unknown): Error {
  if (isHttpError(err)) return err;
  // multer is loaded at the first multipart upload (multipartParser), so its MulterError class is not at hand here; its name is.
  if (err instanceof Error && err.name === 'MulterError') {
    const { code, field } = err as Error & { code: string; field?: string };
    if (code === 'LIMIT_FILE_SIZE') return new HttpError('upload_too_large');
    return new HttpError('invalid_request', `Malformed upload: ${err.message} (${field ? `field "${field}"` : code}); send exactly one part named "file".`, { multer: code });
  }
  if (err instanceof Error) {
    return new HttpError('invalid_request', `Malformed multipart body: ${err.message}.`);
  }
  return new Error(String(err));
}

/**
 * multer for one part named "file", stored by `engine`. The parser is
 * watched from the start (watchParser) through multer's `streamHandler`
 * option, documented in multer's README (2.5) though not yet in
 * @types/multer; test/unit/framework-contracts.test.ts fails if multer stops
 * calling it with busboy or busboy stops emitting the events we listen to.
 * multer (and busboy) load at the first multipart upload: a node that gets
 * none does not carry them (idle memory: README, "Many clients").
 */
export function multipartParser(engine: StorageEngine, limits: Options['limits']): RequestHandler {
  const options: Options & { streamHandler(req: Request, busboy: Writable): void } = {
    storage: engine,
    limits,
    streamHandler: (req, busboy) => {
      req.res!.locals.bodyComplete = watchParser(busboy);
      // The route ends a body that stalls before its file part (src/http/routes/upload.ts).
      req.res!.locals.parser = busboy;
      req.pipe(busboy);
    },
  };
  let parser: Promise<RequestHandler> | undefined;
  return (req, res, next) => {
    parser ??= import('multer').then(({ default: multer }) => multer(options).single('file'));
    parser.then((parse) => parse(req, res, next), next);
  };
}

/**
 * Settles when multer's parser (busboy) is done with the whole body: resolves
 * on a clean end, rejects on a part, file or field past the limits or a
 * malformed body.
 */
function watchParser(parser: EventEmitter): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    const refuse = (what: string) => () => reject(new HttpError('invalid_request', `Malformed upload: ${what}; send exactly one part named "file".`));
    parser.once('partsLimit', refuse('more than one part'));
    parser.once('filesLimit', refuse('more than one file'));
    parser.once('fieldsLimit', refuse('an unexpected field'));
    parser.once('error', (err: Error) => reject(new HttpError('invalid_request', `Malformed multipart body: ${err.message}.`)));
    parser.once('close', () => resolve());
  });
  // Only a stored part awaits it; a body without one must not leave an unhandled rejection.
  done.catch(() => undefined);
  return done;
}
