import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './spawn-server.js';

/** A `nanocdn` command running in its own process, its output gathered as it comes. */
export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  /** Resolves once stderr contains `text`, or after `timeoutMs` (the caller's assertions then say what is missing). */
  stderrContains(text: string, timeoutMs: number): Promise<void>;
  /** kill -9 if it still runs (afterwards, in a finally). */
  kill(): void;
}

/** Starts `nanocdn <args>` from the build with `env` on top of this process's environment. */
export function startCli(args: string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child, exited,
    stdout: () => stdout,
    stderr: () => stderr,
    async stderrContains(text, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!stderr.includes(text) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
