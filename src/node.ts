import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config/schema.js';
import type { NodeContext } from './context.js';
import { createLogger, type Logger } from './logger.js';
import { FsStorage } from './storage/fs-storage.js';
import { MemoryStorage } from './storage/memory-storage.js';
import type { Storage } from './storage/storage.js';
import type { HoldsPart, MetadataIndex } from './index/index.js';
import { openIndex } from './index/open.js';
import { AccessTimes } from './index/access-times.js';
import { reconcile } from './index/reconcile.js';
import { DiskGuard } from './disk/disk-guard.js';
import { statfsReader, type ReadDisk } from './disk/statfs.js';
import { capacityReader } from './disk/capacity.js';
import { TmpSweeper } from './storage/tmp-sweeper.js';
import { Classifier } from './classes.js';
import { Evictor } from './eviction/evictor.js';
import { quotaRoomMaker } from './eviction/quota.js';
import { LocalLedger } from './accounting/local-ledger.js';
import type { DecidingLedger, Ledger, TenantInflight } from './accounting/ledger.js';
import { NODE_LEASE_MS, NodeLease, newNodeId, SharedLedger } from './accounting/shared-ledger.js';
import { EvictionScheduler } from './eviction/scheduler.js';
import { WatermarkTrigger } from './eviction/watermark.js';
import { Uploader } from './upload/uploader.js';
import { Authenticator } from './http/auth.js';
import { Monitoring, type NodeView } from './monitoring/monitoring.js';
import { RetiredNames } from './retired-names.js';

/** What tests (and only tests) replace: the clock, the disk reading, the logger. */
export interface NodeOverrides {
  now?: () => number;
  readDisk?: ReadDisk;
  logger?: Logger;
  /** Milliseconds between access-time flushes. */
  accessFlushMs?: number;
  /** Milliseconds between used-space samples of the usage history. */
  usageSampleMs?: number;
  /** False when a server may be running on the same data dir (the cleanup command): tmp/ is left alone. */
  sweepTmpAtOpen?: boolean;
  /** A storage engine to use instead of the one config.storage.engine names (e.g. one MemoryStorage across restarts). */
  storage?: Storage;
  /** The process's part in a clustered node (src/cluster/); absent: the whole node in one process. */
  cluster?: ClusterRole;
}

/**
 * A clustered node (docs/design.md §14): the primary runs what must run
 * once (ledger, eviction, low-disk trigger, tmp sweep, reconcile, usage
 * history); a worker serves HTTP and asks the primary through `ledger` and
 * `nodeView`, and tells it when it freed space.
 */
export type ClusterRole =
  | { role: 'primary'; workerPids: () => ReadonlySet<number> }
  | { role: 'worker'; ledger: Ledger; nodeView: NodeView; onFreed: () => void };

/** A running node's parts, and how to stop them. */
export interface NodeRuntime {
  readonly ctx: NodeContext;
  readonly sweeper: TmpSweeper;
  /** The ledger that decides in this process (the primary's serves its workers): in-process, or shared by the nodes of a cluster. */
  readonly decidingLedger: DecidingLedger;
  /** Background work after the server listens: timers, scheduled eviction, the low-disk trigger, index reconcile. */
  startBackground(): void;
  close(): Promise<void>;
}

/**
 * Opens the data dir: storage engine, index (rebuilt when missing), disk
 * guard; sweeps tmp/ left by a dead process. Does not listen.
 */
export async function openNode(config: Config, overrides: NodeOverrides = {}): Promise<NodeRuntime> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const now = overrides.now ?? Date.now;
  const worker = overrides.cluster?.role === 'worker' ? overrides.cluster : undefined;
  const dataDir = path.resolve(config.dataDir);
  let storage: Storage;
  let index: MetadataIndex;
  let readDisk: ReadDisk = statfsReader(dataDir);
  let diskPath = dataDir;
  // A node process on an index that nodes share has an id and a lease there (its holds, its name claims; docs/design.md §15).
  let nodeId: string | null = null;
  if (config.storage.engine === 's3') {
    const capacityBytes = config.storage.s3.capacityBytes;
    if (capacityBytes === null) throw new Error('storage.s3.capacityBytes is required when storage.engine is "s3"');
    // The bytes live in a bucket; the index (and its name claims) stays here.
    await mkdir(dataDir, { recursive: true });
    index = await openIndex(config, dataDir);
    if (index.holds) nodeId = newNodeId();
    // Loaded only when configured: the AWS SDK would add ~10 MB to every fs node's idle memory.
    const { openS3Engine } = await import('./storage/s3-engine.js');
    const opened = await openS3Engine(config, index.claims, logger.child({ module: 's3' }), now, nodeId).catch(async (err: unknown) => {
      await index.close();
      throw err;
    });
    storage = opened.storage;
    diskPath = opened.where;
    // The "disk" is what this node may use of the store.
    const { totals, holds } = index;
    readDisk = capacityReader({
      capacityBytes, committedBytes: async () => (await totals.summary()).bytes,
      // On a shared index the store is used by every node's uploads: what they hold (docs/design.md §15).
      inflightBytes: holds ? async () => (await holds.held(now())).bytes : () => opened.storage.inflightBytes,
    });
  } else {
    storage = overrides.storage ?? await openLocalStorage(config, dataDir, logger);
    index = await openIndex(config, dataDir);
  }
  const access = new AccessTimes(index.files, logger.child({ module: 'access-times' }));
  const classifier = new Classifier(config.classes);
  const guard = new DiskGuard({
    readDisk: overrides.readDisk ?? readDisk,
    now,
    logger: logger.child({ module: 'disk-guard' }),
    path: diskPath,
    onFreed: worker?.onFreed,
    ...config.disk,
  });
  const monitoring = new Monitoring({
    config, guard, storage, index, classifier, now, logger: logger.child({ module: 'monitoring' }),
    inflightUploads: (): number => (overrides.cluster?.role === 'primary' ? deciding.inflightUploads : uploader.inflight),
    inflightOf: (tenant: string): TenantInflight => ledger.inflightOf(tenant),
    spareBytes: (): number => deciding.spareBytes ?? 0,
    clusterInflight: index.holds ? clusterInflightOf(index.holds) : undefined,
    nodeView: worker?.nodeView,
  });
  const retired = new RetiredNames({ retired: index.retired, retentionMs: config.upload.retirePubNamesFor, now, logger: logger.child({ module: 'retired-names' }) });
  const evictor = new Evictor({ storage, index, access, guard, classifier, now, dataDir, retired, logger: logger.child({ module: 'eviction' }) });
  monitoring.attachEviction(evictor);
  const shared = index.holds && nodeId !== null && !worker ? new SharedLedger({
    holds: index.holds, nodeId, now, limits: () => config.limits.tenant, observer: monitoring, logger: logger.child({ module: 'ledger' }),
    makeRoom: quotaRoomMaker(evictor),
    room: () => {
      const capacityBytes = config.storage.s3.capacityBytes ?? 0;
      const reserveBytes = guard.reserveBytes(capacityBytes);
      return { capacityBytes, reserveBytes, roomBytes: capacityBytes - reserveBytes };
    },
  }) : undefined;
  // Several nodes share the index: they decide together in it (docs/design.md §15); else in this process.
  const deciding: DecidingLedger = shared ?? new LocalLedger({
    guard, now, limits: () => config.limits.tenant, observer: monitoring,
    storedBytes: async (tenant, cls) => (await index.totals.tenantClass(tenant, cls)).bytes,
    makeRoom: quotaRoomMaker(evictor),
  });
  if (shared) await shared.start();
  // A worker's ledger is the primary's; its own lease keeps its name claims (a worker that dies has its claims swept).
  const workerLease = index.holds && nodeId !== null && worker ? new NodeLease({ holds: index.holds, nodeId, now, logger: logger.child({ module: 'ledger' }) }) : undefined;
  await workerLease?.start();
  const ledger: Ledger = worker?.ledger ?? deciding;
  // Runs recorded from here on are counted: this node's and those of other processes on the data dir (a worker's /metrics are the primary's).
  if (!worker) await monitoring.runLog.start();
  const uploader = new Uploader({
    storage, files: index.files, guard, ledger, classifier, now, logger: logger.child({ module: 'upload' }), maxBytes: config.upload.maxBytes,
    idleTimeoutMs: config.upload.idleTimeout, observer: monitoring, retired,
  });
  const auth = new Authenticator(config.auth.tokens, config.auth.trustedNetworks);
  const ctx: NodeContext = { config, logger, now, storage, index, access, guard, ledger, classifier, uploader, auth, monitoring, evictor, retired };

  const sweeper = new TmpSweeper(storage, () => guard.noteFreed(), logger.child({ module: 'tmp-sweeper' }), now, config.eviction.tmpMaxAge, sweepScope(overrides.cluster));
  // Everything in tmp/ now belongs to a dead process (a worker starts while the others run: the primary swept).
  if (overrides.sweepTmpAtOpen !== false && !worker) await sweeper.sweepAll();
  if (index.created && !worker) {
    const drift = await reconcile(storage, index.files, classifier, { now });
    if (drift.addedCount > 0) logger.warn('index was missing; rebuilt from files/', { files: drift.addedCount });
  }
  await guard.refresh(true);
  const clusterEviction = index.eviction;
  // Nodes on a shared index run each scheduled tick once for the cluster (docs/design.md §15).
  const scheduler = new EvictionScheduler(config.eviction.schedule, evictor, sweeper, logger.child({ module: 'eviction' }),
    clusterEviction ? (tickMs) => clusterEviction.claimTick(tickMs, nodeId) : undefined);
  monitoring.attachSchedule(() => scheduler.nextRun());
  const watermark = new WatermarkTrigger(guard, evictor, config.disk.lowWatermarkPercent, logger.child({ module: 'eviction' }));

  const timers: NodeJS.Timeout[] = [];
  return {
    ctx,
    sweeper,
    decidingLedger: deciding,
    startBackground() {
      access.start(overrides.accessFlushMs ?? 2000);
      // A worker sweeps its own stale spool entries; the primary those of dead processes.
      // On a shared index a dead node's claims go within a lease and one sweep (docs/design.md §15).
      sweeper.start(nodeId !== null ? NODE_LEASE_MS : undefined);
      // Keeps the disk state (readyz, watermark trigger) current when no upload asks.
      const refresh = setInterval(() => { guard.refresh().catch(() => undefined); }, 1000);
      refresh.unref();
      timers.push(refresh);
      if (worker) return;
      monitoring.start(overrides.usageSampleMs ?? 60_000);
      scheduler.start();
      watermark.start();
      reconcile(storage, index.files, classifier, { now })
        .then((drift) => {
          if (drift.skippedCount > 0) {
            logger.warn('files/ holds entries that are not stored files (never followed nor served; remove them)', { count: drift.skippedCount, sample: drift.skipped.slice(0, 10) });
          }
          if (drift.addedCount || drift.changedCount || drift.removedCount) {
            logger.warn('index drift reconciled', {
              added: drift.addedCount, changed: drift.changedCount, removed: drift.removedCount,
              sample: [...drift.added, ...drift.changed.map((c) => c.name), ...drift.removed].slice(0, 10),
            });
          } else {
            logger.info('index reconciled: no drift', { checked: drift.checked });
          }
        })
        .catch((err: unknown) => logger.error('index reconcile failed', { error: (err as Error).message }));
    },
    async close() {
      for (const timer of timers) clearInterval(timer);
      sweeper.stop();
      monitoring.stop();
      await scheduler.stop();
      await watermark.stop();
      await evictor.close();
      await shared?.stop();
      await workerLease?.stop();
      await access.stop();
      await storage.close();
      await index.close();
    },
  };
}

/** The uploads in flight of every live node of a cluster, from the shared holds (docs/design.md §15). */
function clusterInflightOf(holds: HoldsPart): (nowMs: number, tenant?: string) => Promise<TenantInflight> {
  return async (nowMs, tenant) => holds.held(nowMs, tenant);
}

/** The engines that keep the index in the data dir: fs, or memory (the index still lives on disk). */
async function openLocalStorage(config: Config, dataDir: string, logger: Logger): Promise<Storage> {
  if (config.storage.engine === 'memory') {
    logger.warn('storage.engine is "memory": stored files live in this process only and are lost when it stops');
    await mkdir(dataDir, { recursive: true });
    return new MemoryStorage();
  }
  const fsStorage = new FsStorage({ dataDir, fsync: config.durability === 'fsync' });
  await fsStorage.init();
  return fsStorage;
}

/** A worker sweeps only its own spool entries; the primary those of every process but its live workers. */
function sweepScope(cluster: ClusterRole | undefined): ((ownerPid: number | null) => boolean) | undefined {
  if (cluster?.role === 'worker') return (pid) => pid === process.pid;
  if (cluster?.role === 'primary') return (pid) => pid === null || !cluster.workerPids().has(pid);
  return undefined;
}
