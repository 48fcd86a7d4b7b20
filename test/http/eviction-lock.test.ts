import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WatermarkTrigger } from '../../src/eviction/watermark.js';
import { silentLogger } from '../../src/logger.js';
import { holdLockInChild, type LockHolderProcess } from '../helpers/lock-holder.js';
import { fakeDisk, testNode, type TestNode } from '../helpers/test-node.js';

const failedRuns = (metrics: string) => Number(/^nanocdn_eviction_runs_total\{result="failed"\} (\d+)/m.exec(metrics)?.[1]);

describe('a low-disk eviction that cannot run is a failure, not a silent wait', () => {
  let node: TestNode;
  let holder: LockHolderProcess | undefined;
  const disk = fakeDisk(1000_000, 100_000);
  beforeEach(async () => {
    node = await testNode({ readDisk: disk, config: { disk: { minFreeBytes: 0, minFreePercent: 0, highWatermarkPercent: 80, lowWatermarkPercent: 70 } } });
  });
  afterEach(async () => {
    await holder?.kill9();
    await node.close();
  });

  it('the lock held by another process for too long counts in nanocdn_eviction_runs_total{result="failed"}, /usage names the holder and alerts', async () => {
    holder = await holdLockInChild(node.dataDir);
    expect(failedRuns((await request(node.app).get('/metrics')).text)).toBe(0);
    const trigger = new WatermarkTrigger(node.ctx.guard, node.ctx.evictor, 70, silentLogger(), 20, 100);
    trigger.start();
    try {
      const deadline = Date.now() + 10_000;
      while (failedRuns((await request(node.app).get('/metrics')).text) === 0) {
        if (Date.now() > deadline) throw new Error('no failed run counted');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await trigger.stop();
    }
    const usage = (await request(node.app).get('/usage')).body;
    expect(usage.eviction).toMatchObject({ lockHolderPid: holder.pid, lockSinceSeconds: expect.any(Number) });
    // The failed run removed nothing: it is the last run, not the last eviction (the last run that removed files).
    expect(usage.lastRun).toMatchObject({ reason: 'low-disk', files: 0, error: expect.stringContaining(`held by pid ${holder.pid}`) });
    expect(usage.lastEviction).toBeNull();
    expect(usage.alerts.some((a: string) => a.startsWith('eviction failed at') && a.includes(`pid ${holder!.pid}`))).toBe(true);
  });
});
