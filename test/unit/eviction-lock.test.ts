import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireEvictionLock, lockHolder, LockHeldError } from '../../src/eviction/lock.js';
import { holdLockInChild } from '../helpers/lock-holder.js';

describe('eviction lock (abstract Unix socket)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-lock-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('holds until released, refuses a second holder naming us, and is free again after release', async () => {
    const before = Date.now();
    const lock = await acquireEvictionLock(dir);
    const err = await acquireEvictionLock(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockHeldError);
    expect((err as LockHeldError).holderPid).toBe(process.pid);
    expect((await lockHolder(dir))?.sinceMs).toBeGreaterThanOrEqual(before);
    lock.release();
    lock.release();
    expect(await lockHolder(dir)).toBeNull();
    (await acquireEvictionLock(dir)).release();
  });

  it('is shared across processes: names the other holder (pid, since), and is freed by the kernel when that holder is killed', async () => {
    const holder = await holdLockInChild(dir);
    try {
      const err = await acquireEvictionLock(dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockHeldError);
      expect((err as LockHeldError).holder).toMatchObject({ pid: holder.pid, sinceMs: expect.any(Number) });
      expect((await lockHolder(dir))?.pid).toBe(holder.pid);
    } finally {
      await holder.kill9();
    }
    expect(await lockHolder(dir)).toBeNull();
    (await acquireEvictionLock(dir)).release();
  });

  it('an empty eviction.lock file (what a full disk left behind) blocks nothing: the lock needs no file', async () => {
    writeFileSync(path.join(dir, 'eviction.lock'), '');
    const lock = await acquireEvictionLock(dir);
    lock.release();
  });

  it('is one lock per data dir, whatever path names it (a symlinked path meets the same lock)', async () => {
    const other = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-lock-'));
    const alias = `${dir}-alias`;
    rmSync(alias, { force: true });
    (await import('node:fs')).symlinkSync(dir, alias);
    try {
      const lock = await acquireEvictionLock(dir);
      await expect(acquireEvictionLock(alias)).rejects.toBeInstanceOf(LockHeldError);
      const free = await acquireEvictionLock(other);
      free.release();
      lock.release();
    } finally {
      rmSync(alias, { force: true });
      rmSync(other, { recursive: true, force: true });
    }
  });
});
