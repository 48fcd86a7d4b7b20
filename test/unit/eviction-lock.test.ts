import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireEvictionLock, LockHeldError } from '../../src/eviction/lock.js';

describe('eviction lock', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-lock-'));
  const file = path.join(dir, 'eviction.lock');
  afterEach(() => rmSync(file, { force: true }));

  it('holds our pid until released, and refuses a second holder', () => {
    const lock = acquireEvictionLock(dir);
    expect(readFileSync(file, 'utf8').trim()).toBe(String(process.pid));
    expect(() => acquireEvictionLock(dir)).toThrow(LockHeldError);
    lock.release();
    expect(existsSync(file)).toBe(false);
    acquireEvictionLock(dir).release();
  });

  it('breaks the lock of a dead process', () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(file, `${dead.stdout}\n`);
    const lock = acquireEvictionLock(dir);
    expect(readFileSync(file, 'utf8').trim()).toBe(String(process.pid));
    lock.release();
  });

  it('names the live holder, and never removes a lock it does not hold', () => {
    writeFileSync(file, '1\n');
    try {
      acquireEvictionLock(dir);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(LockHeldError);
      expect((err as LockHeldError).holderPid).toBe(1);
    }
    const lock = acquireEvictionLock.bind(null, dir);
    rmSync(file);
    const held = lock();
    writeFileSync(file, '1\n'); // someone broke ours and took it
    held.release();
    expect(readFileSync(file, 'utf8').trim()).toBe('1');
  });
});
