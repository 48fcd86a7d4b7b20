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
      const result = cpu(await runWrk({ ...common, url: `${target.url}/${variant.name}`, script: this.getScript }));
      return { result, problems: statusProblems(result) };
    }

    const namePrefix = `pub/bench-put/run${++this.runs}`;
    const script = writePutScript(this.ctx.workDir, `run${this.runs}`, {
      pathPrefix: target.putPath(`${namePrefix}/`), bodyFile: this.ctx.putBodies.get(scenario.size)!, headers: common.headers,
    });
    const result = cpu(await runWrk({ ...common, headers: {}, url: target.url, script, timeoutSec: 30 }));
    // Let uploads the server already has finish landing before counting them.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stored = countStored(join(target.filesDir, namePrefix), scenario.size);
    await removeStored(target, namePrefix, this.ctx.token);
    const ok = result.requests - result.errors.status;
    const problems = statusProblems(result);
    // Uploads complete at the server may still be unanswered when wrk stops: up to one per connection more.
    if (stored.files < ok || stored.files > ok + scenario.connections) problems.push(`${stored.files} files stored for ${ok} successful PUTs`);
    if (stored.wrongSize > 0) problems.push(`${stored.wrongSize} stored files of the wrong size`);
    return { result, problems };
  }
}

/** Starts counting CPU now; the returned function adds server and "other" CPU % to a wrk result. */
function cpuMeter(target: Target): (result: WrkResult) => RunResult {
  const serverCpu = () => target.cpuPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const serverBefore = serverCpu();
  const machineBefore = machineBusySeconds();
  return (result) => {
    const percent = (seconds: number) => (100 * seconds) / result.durationSec;
    const serverCpuPercent = percent(serverCpu() - serverBefore);
    // Everything else the machine did meanwhile: other people's processes, the kernel's writeback.
    const otherCpuPercent = Math.max(0, percent(machineBusySeconds() - machineBefore) - serverCpuPercent - result.clientCpuPercent);
    return { ...result, serverCpuPercent, otherCpuPercent };
  };
}

function statusProblems(result: WrkResult): string[] {
  return result.errors.status > 0 ? [`${result.errors.status} non-2xx/3xx responses`] : [];
}
