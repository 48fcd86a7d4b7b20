/**
 * What the bench measures. A scenario is one load shape (method, size,
 * connections); its variants are the servers under that load. Variants marked
 * `baseline` are plain nginx; every other variant's rps is divided by theirs.
 */

export const MB16 = 1_600_000;
export const KB10 = 10_000;

/**
 * Ids of the processes run.ts starts (see setup.ts): nginx with 1 worker and
 * with `worker_processes auto`; the node with `workers` 1 and "auto"
 * (NANOCDN_WORKERS), fsync; the node with workers 1 and durability none;
 * the shipped front before a node. floor.ts starts the platform floor
 * (bench/floor-server.ts), also without the sha256 and with blocking reads.
 */
export type TargetId = 'nginx-1' | 'nginx-auto' | 'node-1' | 'node-auto' | 'node-none' | 'front' | 'floor' | 'floor-nohash' | 'floor-blocking' | 'floor-cached';

/** The nginx each target is compared with: one process with one worker; the cluster, the front and the floor (a cluster) with `auto`. */
export const BASELINE_OF: Record<TargetId, TargetId> = {
  'nginx-1': 'nginx-1', 'nginx-auto': 'nginx-auto', 'node-1': 'nginx-1', 'node-none': 'nginx-1', 'node-auto': 'nginx-auto', front: 'nginx-auto',
  floor: 'nginx-auto', 'floor-nohash': 'nginx-auto', 'floor-blocking': 'nginx-auto', 'floor-cached': 'nginx-auto',
};

export interface Variant {
  label: string;
  target: TargetId;
  baseline: boolean;
  /** GET: the name requested (pub/... or priv/...). */
  name?: string;
  /** Send `Authorization: Bearer <token>`. */
  auth: boolean;
}

export interface Scenario {
  id: string;
  title: string;
  method: 'PUT' | 'GET';
  /** Body (PUT) or file (GET) size in bytes. */
  size: number;
  connections: number;
  variants: Variant[];
  /** nginx rps in the reference run (2 cores, loopback, wrk 2 threads, 10 s). */
  referenceNginxRps?: number;
  /**
   * nginx's usual rps on this bench's 2-core VM when it is quiet (README,
   * Performance), per baseline: a run whose nginx is far below it (another
   * load on the machine) has its ratios voided (report.ts).
   */
  usualNginxRps?: Partial<Record<TargetId, number>>;
}

export const NGINX_BASELINES: Variant[] = [
  { label: 'nginx 1 worker', target: 'nginx-1', baseline: true, auth: false },
  { label: 'nginx auto workers', target: 'nginx-auto', baseline: true, auth: false },
];

/** Name of the GET fixture of a size and visibility. */
export function fixtureName(visibility: 'pub' | 'priv', size: number): string {
  return `${visibility}/bench/get-${size}.bin`;
}

type Usual = Scenario['usualNginxRps'];

function put(size: number, connections: number, usual: Usual, referenceNginxRps?: number, withNone = true): Scenario {
  return {
    id: `put-${label(size)}-c${connections}`,
    title: `PUT ${human(size)} x${connections}`,
    method: 'PUT', size, connections, referenceNginxRps, usualNginxRps: usual,
    variants: [
      ...NGINX_BASELINES,
      { label: 'node w=1 fsync', target: 'node-1', baseline: false, auth: true },
      { label: 'node w=auto fsync', target: 'node-auto', baseline: false, auth: true },
      ...(withNone ? [{ label: 'node w=1 none', target: 'node-none' as const, baseline: false, auth: true }] : []),
    ],
  };
}

function get(size: number, connections: number, usual: Usual, referenceNginxRps?: number): Scenario {
  const pub = fixtureName('pub', size);
  const priv = fixtureName('priv', size);
  return {
    id: `get-${label(size)}-c${connections}`,
    title: `GET ${human(size)} x${connections}`,
    method: 'GET', size, connections, referenceNginxRps, usualNginxRps: usual,
    variants: [
      ...NGINX_BASELINES.map((v) => ({ ...v, name: pub })),
      { label: 'node w=1 pub', target: 'node-1', baseline: false, name: pub, auth: false },
      { label: 'node w=auto pub', target: 'node-auto', baseline: false, name: pub, auth: false },
      { label: 'node w=1 priv+token', target: 'node-1', baseline: false, name: priv, auth: true },
      { label: 'front pub (nginx disk)', target: 'front', baseline: false, name: pub, auth: false },
      { label: 'front priv (X-Accel)', target: 'front', baseline: false, name: priv, auth: true },
    ],
  };
}

/** Usual figures: quiet runs of 2026-11-27 and 2026-12-02 on the 2-core VM (README, Performance). */
export const SCENARIOS: Scenario[] = [
  put(MB16, 8, { 'nginx-1': 320, 'nginx-auto': 315 }, 330),
  put(MB16, 32, { 'nginx-1': 290, 'nginx-auto': 310 }, undefined, false),
  get(MB16, 32, { 'nginx-1': 1_650, 'nginx-auto': 1_660 }, 2050),
  get(KB10, 32, { 'nginx-1': 50_000, 'nginx-auto': 53_000 }, 60_000),
];

/**
 * --only: a scenario is kept when the text is in its id/title or in one of
 * its variants' labels; then only the matching variants run, plus the nginx
 * baselines the ratios need.
 */
export function selectScenarios(only: string | undefined, available: (v: Variant) => boolean): Scenario[] {
  const needle = only?.toLowerCase();
  const out: Scenario[] = [];
  for (const scenario of SCENARIOS) {
    const inScenario = !needle || `${scenario.id} ${scenario.title}`.toLowerCase().includes(needle);
    const variants = scenario.variants.filter((v) => available(v)
      && (inScenario || v.baseline || v.label.toLowerCase().includes(needle)));
    if (variants.some((v) => !v.baseline || inScenario)) out.push({ ...scenario, variants });
  }
  return out;
}

function label(size: number): string {
  return size >= 1_000_000 ? `${size / 1_000_000}MB` : `${size / 1000}KB`;
}

export function human(size: number): string {
  return size >= 1_000_000 ? `${size / 1_000_000} MB` : `${size / 1000} KB`;
}
