import type { Request } from 'express';
import { describe, expect, it } from 'vitest';
import type { StoredName } from '../../src/names.js';
import { MultipartStorageEngine } from '../../src/upload/multipart-engine.js';
import type { Uploader } from '../../src/upload/uploader.js';

describe('MultipartStorageEngine._removeFile', () => {
  const removeVia = (engine: MultipartStorageEngine, file: object) => new Promise<void>((resolve, reject) => {
    engine._removeFile({} as Request, file as Express.Multer.File, (err) => (err ? reject(err) : resolve()));
  });

  it('hands the stored part to the removal as the name it was stored under (decoded once, at admission)', async () => {
    const removed: StoredName[] = [];
    const engine = new MultipartStorageEngine({} as Uploader, async (stored) => { removed.push(stored); });
    await removeVia(engine, { result: { name: 'priv/acme/forms/a.bin' } });
    expect(removed).toEqual([expect.objectContaining({ name: 'priv/acme/forms/a.bin', tenant: 'acme', visibility: 'priv' })]);
  });

  it('reports a failed removal to multer', async () => {
    const engine = new MultipartStorageEngine({} as Uploader, async () => { throw new Error('EACCES'); });
    await expect(removeVia(engine, { result: { name: 'pub/acme/a.bin' } })).rejects.toThrow('EACCES');
  });

  it('does nothing for a part that was never stored', async () => {
    const engine = new MultipartStorageEngine({} as Uploader, async () => { throw new Error('must not be called'); });
    await removeVia(engine, {});
  });
});
