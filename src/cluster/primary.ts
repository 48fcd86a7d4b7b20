import cluster, { type Worker } from 'node:cluster';
import { setTimeout as delay } from 'node:timers/promises';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { NodeContext } from '../context.js';
import { openNode } from '../node.js';
import { withNodeFlags } from '../node-flags.js';
import { IpcPeer } from './ipc.js';
import { CALLS, CLUSTER_SIZE_ENV } from './calls.js';
import { LedgerHost } from './ledger-host.js';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** Restart back-off: doubles per crash within RESTART_WINDOW_MS, up to the maximum. */
const RESTART_MIN_MS = 250;
const RESTART_MAX_MS = 30_000;
const RESTART_WINDOW_MS = 60_000;
/** Past the shutdown grace, how long a worker may take to flush and exit before it is killed. */
const EXIT_MARGIN_MS = 5_000;
/** How long a scrape waits for one worker's metrics. */
const METRICS_WAIT_MS = 2_000;

/**
 * The primary of a clustered node (docs/design.md §14). It serves no HTTP:
 * it forks `workers` processes that share the port, restarts one that dies
 * (with back-off), and runs what must run once for the node — the ledger
 * every worker admits through, eviction (schedule and low-disk trigger),
 * the tmp sweep, reconcile, the usage history — and answers the workers'
 * /usage and /metrics for the node as a whole. SIGTERM drains every worker
 * and exits 0; a worker that cannot start stops the node with its exit code.
 */
export async function runPrimary(config: Config, workers: number, onStarted: (ctx: NodeContext) => void): Promise<void> {
  const live = new Map<number, { worker: Worker; peer: IpcPeer; listening: boolean }>();
  const runtime = await openNode(config, {
    cluster: { role: 'primary', workerPids: () => new Set([...live.values()].map((w) => w.worker.process.pid!)) },
  });
  const { ctx } = runtime;
  const { logger } = ctx;
  const host = new LedgerHost(runtime.decidingLedger, ctx.classifier, { onRecall: () => ctx.monitoring.metrics.sparesRecalled() });
  let stopping = false;
  let started = false;
  let forkedRest = false;
  const crashes: number[] = [];
  // The workers' V8 flags (src/node-flags.ts), also when the primary was started without them.
  cluster.setupPrimary({ execArgv: withNodeFlags(process.execArgv) });

  const nodeMetrics = async (now: { ready: boolean }): Promise<string> => {
    const parts: MetricsJson[] = [await ctx.monitoring.metricsJson(now)];
    // A worker that is starting (or stuck) is left out rather than waited for.
    const fromWorkers = await Promise.all([...live.values()].filter((w) => w.listening)
      .map(({ peer }) => peer.call<MetricsJson>(CALLS.workerMetrics, null, METRICS_WAIT_MS).catch(() => null)));
    for (const part of fromWorkers) if (part) parts.push(part);
    return AggregatorRegistry.aggregate(parts).metrics();
  };

  let firstListening: (port: number) => void;
  let startFailed: (code: number) => void;
  const ready = new Promise<number>((resolve, reject) => {
    firstListening = resolve;
    startFailed = (code) => reject(Object.assign(new Error(`a worker exited with code ${code} before the node listened`), { exitCode: code }));
  });

  const fork = (): void => {
    const worker = cluster.fork({ [CLUSTER_SIZE_ENV]: String(workers) });
    const peer = new IpcPeer(worker);
    const entry = { worker, peer, listening: false };
    live.set(worker.id, entry);
    host.attach(peer, worker.id);
    peer
      .handle(CALLS.usage, () => ctx.monitoring.usage.build())
      .handle<{ ready: boolean }>(CALLS.metrics, (now) => nodeMetrics(now))
      .handle(CALLS.freed, () => { ctx.guard.noteFreed(); });
    worker.on('listening', (address) => {
      entry.listening = true;
      if (started) return;
      // The first worker listens: the port and the data dir work, the others may start.
      if (!forkedRest) {
        forkedRest = true;
        for (let i = 1; i < workers; i++) fork();
      }
      if (live.size === workers && [...live.values()].every((w) => w.listening)) firstListening(address.port);
    });
    worker.on('exit', (code, signal) => {
      live.delete(worker.id);
      peer.close(new Error('the worker exited'));
      const released = host.workerGone(worker.id);
      if (stopping) return;
      if (!started && !entry.listening) {
        startFailed(code ?? 1);
        return;
      }
      logger.error('worker died; restarting it', { pid: worker.process.pid, code, signal, releasedHolds: released });
      ctx.monitoring.metrics.workerRestarted();
      // Its spool entries are nobody's now (fs names them by pid; the s3 engine's claims follow their own rules).
      if (ctx.storage.tmpHasOwners) runtime.sweeper.sweep(-Infinity).catch((err: unknown) => logger.error('tmp sweep failed', { error: (err as Error).message }));
      const now = Date.now();
      crashes.push(now);
      while (crashes.length && crashes[0] < now - RESTART_WINDOW_MS) crashes.shift();
      const wait = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** (crashes.length - 1));
      setTimeout(() => { if (!stopping) fork(); }, wait).unref();
    });
  };

  // One worker first: what cannot start (a port in use, a bad data dir) is said once, by it, not by every worker.
  fork();
  let port: number;
  try {
    port = await ready;
  } catch (err) {
    stopping = true;
    for (const { worker } of live.values()) worker.process.kill('SIGTERM');
    await runtime.close();
    logger.error('the node could not start', { error: (err as Error).message });
    process.exit((err as { exitCode?: number }).exitCode || 1);
  }
  started = true;
  logger.info('nanocdn listening', { host: config.host, port, dataDir: config.dataDir, engine: ctx.storage.kind, workers });
  runtime.startBackground();

  const shutdown = async (signal: string): Promise<void> => {
    stopping = true;
    logger.info('shutting down', { reason: signal, workers: live.size, inflightUploads: host.size });
    const exits = [...live.values()].map(({ worker }) => new Promise<void>((resolve) => {
      if (worker.isDead()) return resolve();
      worker.once('exit', () => resolve());
      worker.process.kill('SIGTERM');
    }));
    const all = Promise.all(exits);
    const late = await Promise.race([all.then(() => false), delay(config.http.shutdownGrace + EXIT_MARGIN_MS, true)]);
    if (late) {
      logger.error('workers did not stop within the shutdown grace; killing them', { workers: live.size });
      for (const { worker } of live.values()) worker.process.kill('SIGKILL');
      await all;
    }
    await runtime.close();
    logger.info('stopped');
  };
  let draining: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (draining) return;
    draining = shutdown(signal);
    draining.then(() => process.exit(0), (err: unknown) => {
      logger.error('shutdown failed', { error: (err as Error).stack });
      process.exit(1);
    });
  };
  // A second signal (an impatient operator, a signal to the whole group) changes nothing: the drain goes on.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The primary reloads what it decides with (classes, limits' log level); each worker reloads its own.
  process.on('SIGHUP', () => {
    for (const { worker } of live.values()) worker.process.kill('SIGHUP');
  });
  onStarted(ctx);
}
