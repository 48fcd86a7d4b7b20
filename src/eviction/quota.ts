import { HttpError } from '../errors.js';
import { formatBytes } from '../config/units.js';
import type { TotalsPart } from '../index/index.js';
import type { QuotaGate } from '../upload/uploader.js';
import type { StorageClass } from '../classes.js';
import type { Evictor } from './evictor.js';

/**
 * Per-tenant quotas of storage classes at admission (docs/design.md §5 step 2, §7).
 * Evictable classes make room from that tenant's own least recently used
 * files of that class, never anyone else's; other classes refuse with 507.
 * The disk reserve is the DiskGuard's business: nothing is evicted for it here.
 */
export class TenantQuota implements QuotaGate {
  constructor(private readonly totals: Pick<TotalsPart, 'tenantClass'>, private readonly evictor: Evictor) {}

  async admit(tenant: string, cls: StorageClass, incomingBytes: number): Promise<void> {
    const quota = cls.maxBytesPerTenant;
    if (quota === null) return;
    const used = async () => (await this.totals.tenantClass(tenant, cls.name)).bytes;
    const before = await used();
    if (before + incomingBytes <= quota) return;
    // Even an empty quota could not hold it: evicting would only destroy files.
    if (incomingBytes > quota || !cls.evictable) throw exceeded(tenant, cls, before, quota, incomingBytes);
    await this.evictor.run({
      reason: 'admission', exclusive: false, policies: false,
      scope: { tenant, class: cls.name }, freeBytes: before + incomingBytes - quota,
    });
    const after = await used();
    if (after + incomingBytes > quota) throw exceeded(tenant, cls, after, quota, incomingBytes);
  }
}

function exceeded(tenant: string, cls: StorageClass, usedBytes: number, quotaBytes: number, incomingBytes: number): HttpError {
  return new HttpError('quota_exceeded',
    `Tenant "${tenant}" uses ${formatBytes(usedBytes)} of its ${formatBytes(quotaBytes)} quota in class "${cls.name}"; ` +
    `this upload of ${formatBytes(incomingBytes)} does not fit. Delete files or raise classes.${cls.name}.maxBytesPerTenant.`,
    { tenant, class: cls.name, usedBytes, quotaBytes, incomingBytes });
}
