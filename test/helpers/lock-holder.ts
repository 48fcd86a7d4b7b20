import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './spawn-server.js';

export interface LockHolderProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** kill -9 and wait: the kernel frees the lock with the process. */
  kill9(): Promise<void>;
}

/** Another process (the built lock module) that takes the eviction lock of `dataDir` and keeps it until killed. */
export async function holdLockInChild(dataDir: string): Promise<LockHolderProcess> {
  const lockModule = pathToFileURL(path.join(REPO_ROOT, 'dist', 'src', 'eviction', 'lock.js')).href;
  const script = `import(${JSON.stringify(lockModule)}).then((m) => m.acquireEvictionLock(${JSON.stringify(dataDir)}))
    .then(() => { process.stdout.write('held\\n'); setInterval(() => {}, 1 << 30); })
    .catch((err) => { process.stderr.write(String(err)); process.exit(1); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; if (out.includes('held')) resolve(); });
    child.stderr.on('data', (d) => { out += d; });
    child.once('exit', (code) => reject(new Error(`lock holder exited with ${code}: ${out}`)));
  });
  return {
    pid: child.pid!, child,
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
