/** The messages between the primary and its workers besides the ledger's (src/accounting/remote-ledger.ts). */
export const CALLS = {
  /** worker → primary: the node's /usage document. */
  usage: 'node.usage',
  /** worker → primary: the node's /metrics text (the primary gathers every worker's). */
  metrics: 'node.metrics',
  /** primary → worker: this worker's metrics, as prom-client JSON. */
  workerMetrics: 'worker.metrics',
  /** worker → primary (notice): this worker freed space (a delete): the primary's disk reading is stale. */
  freed: 'disk.freed',
} as const;

/** Set by the primary in each worker's environment: how many workers the node has. */
export const CLUSTER_SIZE_ENV = 'NANOCDN_CLUSTER_SIZE';
