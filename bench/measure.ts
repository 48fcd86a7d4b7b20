import { join } from 'node:path';
import { countStored, removeStored } from './fixtures.js';
import { cpuSeconds, machineBusySeconds } from './processes.js';
import type { RunResult } from './report.js';
import type { Scenario, TargetId, Variant } from './scenarios.js';
import type { Target } from './targets.js';
import { runWrk, writeGetScript, writePutScript, type WrkResult } from './wrk.js';

/** wrk threads, as in the reference run. */
export const WRK_THREADS = 2;

export interface MeasureContext {
  targets: Map<TargetId, Target>;
  workDir: string;
  token: string;
  /** Body file of each PUT size. */
  putBodies: Map<number, string>;
}

export interface Measurement {
  result: RunResult;
  /** What the checks after the run found wrong (non-2xx, stored files). */
  problems: string[];
}

/** The Authorization header of a variant that uses the token. */
export function authHeaders(variant: Variant, token: string): Record<string, string> {
  return variant.auth ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * One wrk run of one variant, with the CPU the server, wrk and the rest of
 * the machine used meanwhile. PUT runs are checked (one stored file of the
 * full size per 2xx) and their files removed.
 */
export class Measurer {
  private readonly getScript: string;
  private runs = 0;

  constructor(private readonly ctx: MeasureContext) {
    this.getScript = writeGetScript(ctx.workDir);
  }

  async run(scenario: Scenario, variant: Variant, durationSec: number): Promise<Measurement> {
    const target = this.ctx.targets.get(variant.target)!;
    const cpu = cpuMeter(target);
    const common = { connections: scenario.connections, threads: WRK_THREADS, durationSec, headers: authHeaders(variant, this.ctx.token) };
    if (scenario.method === 'GET') {
      const result = cpu.finish(await runWrk({ ...common, url: `${target.url}/${variant.name}`, script: this.getScript }));
      return { result: { ...result, cpuMsPerRequest: perRequest(result.serverCpuSec, result.requests) }, problems: statusProblems(result) };
    }

    const namePrefix = `pub/bench-put/run${++this.runs}`;
    const script = writePutScript(this.ctx.workDir, `run${this.runs}`, {
      pathPrefix: target.putPath(`${namePrefix}/`), bodyFile: this.ctx.putBodies.get(scenario.size)!, headers: common.headers,
    });
    const measured = cpu.finish(await runWrk({ ...common, headers: {}, url: target.url, script, timeoutSec: 30 }));
    // Let uploads the server already has finish landing before counting them.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stored = countStored(join(target.filesDir, namePrefix), scenario.size);
    // Per upload: the CPU until the last upload landed, over the uploads stored (wrk's count misses those answered after it stopped).
    const result = { ...measured, cpuMsPerRequest: perRequest(cpu.secondsSoFar(), stored.files) };
    await removeStored(target, namePrefix, this.ctx.token);
    const ok = result.requests - result.errors.status;
    const problems = statusProblems(result);
    // Uploads complete at the server may still be unanswered when wrk stops: up to one per connection more.
    if (stored.files < ok || stored.files > ok + scenario.connections) problems.push(`${stored.files} files stored for ${ok} successful PUTs`);
    if (stored.wrongSize > 0) problems.push(`${stored.wrongSize} stored files of the wrong size`);
    return { result, problems };
  }
}

/** Server CPU in ms per request (NaN without requests). */
function perRequest(seconds: number, requests: number): number {
  return requests > 0 ? (1000 * seconds) / requests : NaN;
}

/**
 * Starts counting CPU now. The server's CPU is that of its processes and
 * their children (nginx master and workers, the node's primary and its
 * workers; a front: both), from /proc. finish() adds the server's and
 * "other" CPU to a wrk result.
 */
function cpuMeter(target: Target): { finish(result: WrkResult): Omit<RunResult, 'cpuMsPerRequest'>; secondsSoFar(): number } {
  const serverCpu = () => target.cpuPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const serverBefore = serverCpu();
  const machineBefore = machineBusySeconds();
  return {
    finish: (result) => {
      const percent = (seconds: number) => (100 * seconds) / result.durationSec;
      const serverCpuSec = serverCpu() - serverBefore;
      const serverCpuPercent = percent(serverCpuSec);
      // Everything else the machine did meanwhile: other people's processes, the kernel's writeback.
      const otherCpuPercent = Math.max(0, percent(machineBusySeconds() - machineBefore) - serverCpuPercent - result.clientCpuPercent);
      return { ...result, serverCpuSec, serverCpuPercent, otherCpuPercent };
    },
    secondsSoFar: () => serverCpu() - serverBefore,
  };
}

function statusProblems(result: WrkResult): string[] {
  return result.errors.status > 0 ? [`${result.errors.status} non-2xx/3xx responses`] : [];
}
