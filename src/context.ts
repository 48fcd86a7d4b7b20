import type { Config } from './config/schema.js';
import type { Logger } from './logger.js';
import type { Storage } from './storage/storage.js';
import type { MetadataIndex } from './index/index.js';
import type { AccessTimes } from './index/access-times.js';
import type { DiskGuard } from './disk/disk-guard.js';
import type { Classifier } from './classes.js';
import type { Uploader } from './upload/uploader.js';
import type { Authenticator } from './http/auth.js';
import type { Monitoring } from './monitoring/monitoring.js';
import type { Evictor } from './eviction/evictor.js';
import type { RetiredNames } from './retired-names.js';
import type { Ledger } from './accounting/ledger.js';

/**
 * Everything the HTTP layer needs, built by openNode() (src/node.ts) or by a
 * test. createApp(ctx) wires routes to it; nothing reads globals.
 */
export interface NodeContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly now: () => number;
  readonly storage: Storage;
  readonly index: MetadataIndex;
  readonly access: AccessTimes;
  readonly guard: DiskGuard;
  /** Holds of uploads in flight: disk reserve, tenant quotas, tenant limits. */
  readonly ledger: Ledger;
  readonly classifier: Classifier;
  readonly uploader: Uploader;
  readonly auth: Authenticator;
  /** /usage and /metrics: usage report, metrics registry, usage history. */
  readonly monitoring: Monitoring;
  /** The one eviction runner (schedule, low disk, POST /admin/evict, quotas). */
  readonly evictor: Evictor;
  /** Retired pub names (removals record them, uploads consult them). */
  readonly retired: RetiredNames;
}
