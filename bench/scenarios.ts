/**
 * What the bench measures. A scenario is one load shape (method, size,
 * connections); its variants are the servers under that load. Variants marked
 * `baseline` are plain nginx; every other variant's rps is divided by theirs.
 */

export const MB16 = 1_600_000;
export const KB10 = 10_000;

/** Ids of the processes run.ts starts (see targets.ts). */
export type TargetId = 'nginx-1' | 'nginx-auto' | 'node-fsync' | 'node-none' | 'front';

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
}

export const NGINX_BASELINES: Variant[] = [
  { label: 'nginx 1 worker', target: 'nginx-1', baseline: true, auth: false },
  { label: 'nginx auto workers', target: 'nginx-auto', baseline: true, auth: false },
];

/** Name of the GET fixture of a size and visibility. */
export function fixtureName(visibility: 'pub' | 'priv', size: number): string {
  return `${visibility}/bench/get-${size}.bin`;
}

function put(size: number, connections: number, referenceNginxRps?: number): Scenario {
  return {
    id: `put-${label(size)}-c${connections}`,
    title: `PUT ${human(size)} x${connections}`,
    method: 'PUT', size, connections, referenceNginxRps,
    variants: [
      ...NGINX_BASELINES,
      { label: 'node fsync', target: 'node-fsync', baseline: false, auth: true },
      { label: 'node none', target: 'node-none', baseline: false, auth: true },
    ],
  };
}

function get(size: number, connections: number, referenceNginxRps?: number): Scenario {
  const pub = fixtureName('pub', size);
  const priv = fixtureName('priv', size);
  return {
    id: `get-${label(size)}-c${connections}`,
    title: `GET ${human(size)} x${connections}`,
    method: 'GET', size, connections, referenceNginxRps,
    variants: [
      ...NGINX_BASELINES.map((v) => ({ ...v, name: pub })),
      { label: 'node pub', target: 'node-fsync', baseline: false, name: pub, auth: false },
      { label: 'node priv+token', target: 'node-fsync', baseline: false, name: priv, auth: true },
      { label: 'front pub (nginx disk)', target: 'front', baseline: false, name: pub, auth: false },
      { label: 'front priv (X-Accel)', target: 'front', baseline: false, name: priv, auth: true },
    ],
  };
}

export const SCENARIOS: Scenario[] = [
  put(MB16, 8, 330),
  put(MB16, 32),
  get(MB16, 32, 2050),
  get(KB10, 32, 60_000),
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
