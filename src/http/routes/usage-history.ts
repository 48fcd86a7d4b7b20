import type { Router } from 'express';
import express from 'express';
import type { NodeContext } from '../../context.js';
import { HttpError } from '../../errors.js';
import type { UsedSample } from '../../monitoring/fill-rate.js';
import { monitoringAccess } from '../monitoring-access.js';

const HOUR_MS = 3_600_000;
/** The node keeps 2 days of samples (docs/monitoring.md); asking for more gives nothing more. */
export const MAX_HISTORY_HOURS = 48;
/** At most this many points per answer: 48 h of one-a-minute samples are averaged into 10-minute buckets. */
export const MAX_HISTORY_POINTS = 720;

/**
 * GET /usage/history?hours=N (1..48, default 48): the used-space samples the
 * node keeps for the fill-rate fit, as `[atMs, usedBytes]` pairs, oldest
 * first, bounded to MAX_HISTORY_POINTS. The status page draws its chart from it.
 */
export function usageHistoryRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  router.get('/usage/history', monitoringAccess(ctx), async (req, res) => {
    const hours = parseHours(req.query.hours);
    const toMs = ctx.now();
    const fromMs = toMs - hours * HOUR_MS;
    const samples = await ctx.monitoring.history.samplesSince(fromMs);
    const bucketMs = samples.length > MAX_HISTORY_POINTS ? Math.ceil((hours * HOUR_MS) / MAX_HISTORY_POINTS) : null;
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      hours, fromMs, toMs, samples: samples.length, bucketMs,
      points: (bucketMs === null ? samples : average(samples, fromMs, bucketMs)).map((s) => [s.atMs, s.usedBytes]),
    });
  });
  return router;
}

function parseHours(value: unknown): number {
  if (value === undefined) return MAX_HISTORY_HOURS;
  const hours = Number(value);
  if (typeof value !== 'string' || !/^\d+(\.\d+)?$/.test(value) || hours <= 0 || hours > MAX_HISTORY_HOURS) {
    throw new HttpError('invalid_request', `hours must be a number of hours above 0 and at most ${MAX_HISTORY_HOURS}.`);
  }
  return hours;
}

/** One point per non-empty bucket: the mean time and mean used bytes of its samples. */
function average(samples: readonly UsedSample[], fromMs: number, bucketMs: number): UsedSample[] {
  const buckets = new Map<number, { at: number; used: number; n: number }>();
  for (const s of samples) {
    const key = Math.floor((s.atMs - fromMs) / bucketMs);
    const b = buckets.get(key) ?? { at: 0, used: 0, n: 0 };
    b.at += s.atMs; b.used += s.usedBytes; b.n++;
    buckets.set(key, b);
  }
  return [...buckets.values()].map((b) => ({ atMs: Math.round(b.at / b.n), usedBytes: Math.round(b.used / b.n) }));
}
