import cluster from 'node:cluster';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import { createApp } from './http/app.js';
import { openNode, type NodeOverrides, type NodeRuntime } from './node.js';
import { oneRequestAtATime } from './http/pipelining.js';
import { capConnections, warnOnLowFdLimit } from './http/connection-cap.js';
import { setTimeout as delay } from 'node:timers/promises';

/** How long shutdown waits for last responses to flush before cutting connections. */
const FLUSH_ANSWERS_MS = 1000;

export interface RunningServer {
  readonly runtime: NodeRuntime;
  readonly server: http.Server;
  readonly port: number;
  /** Stops accepting, drains uploads within the grace, flushes and closes. */
  shutdown(reason: string): Promise<void>;
}

/** Opens the node and listens; timeouts against slow clients; graceful shutdown. */
export async function startServer(config: Config, overrides: NodeOverrides = {}): Promise<RunningServer> {
  const runtime = await openNode(config, overrides);
  const { ctx } = runtime;
  let shuttingDown = false;
  const app = createApp(ctx, { isShuttingDown: () => shuttingDown });
  const server = http.createServer({
    requestTimeout: config.http.requestTimeout,
    headersTimeout: config.http.headersTimeout,
    // Node checks both timeouts only this often (default 30 s): a slow-loris
    // client would otherwise hold a socket for up to 30 s past headersTimeout.
    connectionsCheckingInterval: Math.max(100, Math.min(1000, config.http.headersTimeout / 2)),
    // Pipelined requests take effect in order: the next one waits for the previous answer.
  }, oneRequestAtATime(app));
  server.keepAliveTimeout = config.http.keepAliveTimeout;
  capConnections(server, config.http.maxConnections, ctx.logger, () => ctx.monitoring.metrics.connectionRefused());
  // Workers share one limit and one log: the first one says it.
  if (overrides.cluster?.role !== 'worker' || cluster.worker?.id === 1) warnOnLowFdLimit(config.http.maxConnections, ctx.logger);
  // Handle Expect: 100-continue ourselves: the upload route sends 100 only
  // once the upload is admitted, so a refused client never sends its body.
  server.on('checkContinue', (req, res) => server.emit('request', req, res));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => { server.off('error', reject); resolve(); });
  });
  const port = (server.address() as AddressInfo).port;
  // A clustered node's primary says it once for all its workers.
  if (overrides.cluster?.role === 'worker') ctx.logger.debug('worker listening', { port, pid: process.pid });
  else ctx.logger.info('nanocdn listening', { host: config.host, port, dataDir: config.dataDir, engine: ctx.storage.kind });
  runtime.startBackground();

  let closing: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      ctx.logger.info('shutting down', { reason, inflightUploads: ctx.uploader.inflight });
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await ctx.uploader.drain(config.http.shutdownGrace);
      // Let the answers of aborted uploads (503 shutting_down) reach their
      // clients before the remaining connections are cut.
      server.closeIdleConnections();
      await Promise.race([closed, delay(FLUSH_ANSWERS_MS)]);
      server.closeAllConnections();
      await closed;
      await runtime.close();
      ctx.logger.info('stopped');
    })();
    return closing;
  };
  return { runtime, server, port, shutdown };
}
