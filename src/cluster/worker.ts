import type { MetricObjectWithValues, MetricValue, Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { NodeContext } from '../context.js';
import { RemoteLedger } from '../accounting/remote-ledger.js';
import type { UsageReport } from '../monitoring/usage-report.js';
import { startServer } from '../server.js';
import { createLogger } from '../logger.js';
import { IpcPeer, type Port } from './ipc.js';
import { CALLS, CLUSTER_SIZE_ENV } from './calls.js';

/** How long /usage and /metrics wait for the primary's answer (then 500: monitoring sees the node unwell). */
const NODE_VIEW_WAIT_MS = 10_000;

/**
 * A worker of a clustered node (docs/design.md §14): serves HTTP on the
 * shared port; admission, /usage and /metrics are the primary's. Exits 0
 * once drained on SIGTERM (the primary sends it), and when the primary is
 * gone (its uploads in flight end as after a crash: nothing half-written).
 */
export async function runWorker(config: Config, onStarted: (ctx: NodeContext) => void): Promise<void> {
  // http.maxConnections is the node's: each worker takes its share of it (connections are handed out in turn).
  const workers = Number(process.env[CLUSTER_SIZE_ENV]) || 1;
  config = { ...config, http: { ...config.http, maxConnections: Math.ceil(config.http.maxConnections / workers) } };
  const peer = new IpcPeer(process as unknown as Port);
  const ledger = new RemoteLedger(peer);
  let registry: Registry | undefined = undefined;
  // Answered from the start: the primary may ask as soon as this worker listens, before startServer() returns.
  peer.handle(CALLS.workerMetrics, async (): Promise<MetricObjectWithValues<MetricValue<string>>[]> => (registry ? registry.getMetricsAsJSON() : []));
  const running = await startServer(config, {
    logger: createLogger(config.logLevel, { meta: { pid: process.pid } }),
    cluster: {
      role: 'worker',
      ledger,
      nodeView: {
        usage: () => peer.call<UsageReport>(CALLS.usage, null, NODE_VIEW_WAIT_MS),
        metrics: (now) => peer.call<string>(CALLS.metrics, now, NODE_VIEW_WAIT_MS),
      },
      onFreed: () => peer.notify(CALLS.freed),
    },
  });
  const { ctx } = running.runtime;
  registry = ctx.monitoring.metrics.registry;
  ledger.onSpareAdmission = () => ctx.monitoring.metrics.spareAdmitted();
  const stop = (reason: string) => {
    running.shutdown(reason).then(() => process.exit(0), (err: unknown) => {
      ctx.logger.error('shutdown failed', { error: (err as Error).stack });
      process.exit(1);
    });
  };
  // The primary sends SIGTERM, and so may whoever signals the whole process group: once or twice, it drains once.
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Ctrl-C in a terminal reaches every process of the group: the primary decides.
  process.on('SIGINT', () => undefined);
  process.once('disconnect', () => {
    peer.close(new Error('the primary process is gone'));
    stop('primary gone');
  });
  onStarted(ctx);
}
