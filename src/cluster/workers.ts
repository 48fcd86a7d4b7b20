import os from 'node:os';
import type { Config } from '../config/schema.js';

/** The worker processes `workers` asks for: "auto" is the cores available to this process (cgroup and affinity aware). */
export function workerCount(config: Pick<Config, 'workers'>): number {
  return config.workers === 'auto' ? Math.max(1, os.availableParallelism()) : config.workers;
}
