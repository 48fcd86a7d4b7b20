import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Every process the bench starts goes through here, so that all of them are
 * stopped by pid at the end, on an error and on SIGINT/SIGTERM. Nothing is
 * ever stopped by name: other nginx or node processes on the machine are not
 * ours.
 */

interface Tracked {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  /** Signal for a clean stop (nginx: QUIT is graceful, TERM fast). */
  stopSignal: NodeJS.Signals;
}

const running = new Map<number, Tracked>();

export function startProcess(name: string, command: string, args: string[], options: SpawnOptions & { stopSignal?: NodeJS.Signals } = {}): ChildProcess {
  const child = spawn(command, args, options);
  child.on('error', () => { /* reported through pid / exit below */ });
  if (child.pid === undefined) {
    // spawn reports ENOENT asynchronously; make it synchronous for callers.
    throw new Error(`could not start ${name} (${command})`);
  }
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => { running.delete(pid); resolve(); });
    child.once('error', () => { running.delete(pid); resolve(); });
  });
  running.set(pid, { name, child, exited, stopSignal: options.stopSignal ?? 'SIGTERM' });
  return child;
}

/** Stops one process we started: its stop signal, then SIGKILL after a grace period. */
export async function stopProcess(pid: number, graceMs = 10_000): Promise<void> {
  const tracked = running.get(pid);
  if (!tracked) return;
  // nginx workers are children of the master; remember them in case the master has to be killed.
  const children = childPids(pid);
  signal(pid, tracked.stopSignal);
  const timedOut = await Promise.race([
    tracked.exited.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(true), graceMs).unref()),
  ]);
  if (timedOut) {
    process.stderr.write(`bench: ${tracked.name} (pid ${pid}) did not stop in ${graceMs} ms; killing it\n`);
    signal(pid, 'SIGKILL');
    await tracked.exited;
  }
  for (const child of children) if (isAlive(child)) signal(child, 'SIGKILL');
}

/** Stops everything still running, most recently started first. */
export async function stopAll(): Promise<void> {
  const pids = [...running.keys()].reverse();
  await Promise.all(pids.map((pid) => stopProcess(pid)));
}

export function runningCount(): number {
  return running.size;
}

/**
 * On SIGINT/SIGTERM/an uncaught error: stop what we started, run the given
 * cleanup (temp dirs), exit.
 */
export function installExitHandlers(cleanup: () => void): void {
  let stopping = false;
  const bail = (code: number, message?: string) => {
    if (stopping) return;
    stopping = true;
    if (message) process.stderr.write(`${message}\n`);
    void stopAll().finally(() => {
      try { cleanup(); } finally { process.exit(code); }
    });
  };
  process.on('SIGINT', () => bail(130, '\nbench: interrupted; stopping nginx, the nodes and wrk'));
  process.on('SIGTERM', () => bail(143, 'bench: terminated; stopping nginx, the nodes and wrk'));
  process.on('uncaughtException', (err) => bail(1, `bench: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => bail(1, `bench: ${err instanceof Error ? err.stack : String(err)}`));
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig); } catch { /* already gone */ }
}

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** Direct children of a pid, from /proc (Linux); empty elsewhere. */
export function childPids(parent: number): number[] {
  let entries: string[];
  try { entries = readdirSync('/proc'); } catch { return []; }
  const found: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...; comm may contain spaces, so split after the last ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) found.push(Number(entry));
    } catch { /* exited meanwhile */ }
  }
  return found;
}

/**
 * CPU seconds (user + system) used so far by a process and its direct
 * children (nginx workers), from /proc; 0 where there is no /proc.
 */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** The same, user and system time apart (a server's own code against the kernel's work for it). */
export function cpuTimes(pid: number): { user: number; system: number } {
  const total = { user: 0, system: 0 };
  for (const p of [pid, ...childPids(pid)]) {
    const own = ownCpuTimes(p);
    total.user += own.user;
    total.system += own.system;
  }
  return total;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

function ownCpuTimes(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "(comm)": state(0) ppid(1) ... utime(11) stime(12).
    return { user: Number(fields[11]) / USER_HZ, system: Number(fields[12]) / USER_HZ };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** CPU seconds the whole machine has been busy (all cores, not idle or iowait), from /proc/stat. */
export function machineBusySeconds(): number {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = fields;
    return (user + nice + system + irq + softirq + (steal ?? 0)) / USER_HZ;
  } catch {
    return 0;
  }
}
