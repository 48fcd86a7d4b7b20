// config/nanocdn.service: structure (always) and `systemd-analyze verify`
// (where systemd is installed; CI installs it and fails without it).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configWith } from '../../src/config/load.js';
import { REPO_ROOT } from '../helpers/spawn-server.js';
import { hasTool, requirement } from '../helpers/system-tools.js';

const UNIT = path.join(REPO_ROOT, 'config', 'nanocdn.service');
const text = readFileSync(UNIT, 'utf8');

/** The [Service] section's settings (key → values, in order). */
function service(): Map<string, string[]> {
  const section = /^\[Service\]$([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(text)![1];
  const settings = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) settings.set(match[1], [...(settings.get(match[1]) ?? []), match[2]]);
  }
  return settings;
}

function seconds(value: string): number {
  const match = /^(\d+)(s|min)?$/.exec(value);
  if (!match) throw new Error(`cannot read ${value}`);
  return Number(match[1]) * (match[2] === 'min' ? 60 : 1);
}

describe('config/nanocdn.service', () => {
  const settings = service();
  const one = (key: string) => settings.get(key)?.at(-1);

  it('waits longer than the shutdown grace (plus 1 s to flush answers) before SIGKILL', () => {
    const graceSeconds = configWith({}).http.shutdownGrace / 1000;
    expect(seconds(one('TimeoutStopSec')!)).toBeGreaterThan(graceSeconds + 1);
    expect(one('KillSignal')).toBe('SIGTERM');
  });

  it('reloads with SIGHUP and starts `nanocdn serve` with --config and --data-dir, checking the config first', () => {
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('ExecStart')).toMatch(/\/nanocdn serve --config \S+ --data-dir (\S+)$/);
    expect(one('ExecStartPre')).toMatch(/\/nanocdn config check .*--config /);
  });

  it('is hardened: no new privileges, a read-only system except the data dir, enough descriptors', () => {
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    const dataDir = /--data-dir (\S+)$/.exec(one('ExecStart')!)![1];
    expect(settings.get('ReadWritePaths')).toContain(dataDir);
    expect(Number(one('LimitNOFILE'))).toBeGreaterThanOrEqual(65536);
    expect(one('User')).toBe('nanocdn');
    expect(one('RestartPreventExitStatus')).toContain('78');
  });

  const verify = requirement('systemd-analyze', hasTool('systemd-analyze'), 'apt-get install systemd');
  it.runIf(verify)('passes `systemd-analyze verify` without a warning', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-unit-'));
    // verify checks that the executables exist: point them at this node binary.
    const unit = path.join(dir, 'nanocdn.service');
    writeFileSync(unit, text.replaceAll('/usr/local/bin/nanocdn', process.execPath));
    const run = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr.trim()).toBe('');
    // And it does catch a mistake (so the test can fail).
    writeFileSync(unit, text.replaceAll('/usr/local/bin/nanocdn', process.execPath).replace('TimeoutStopSec=', 'TimeoutStopSecs='));
    expect(spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' }).stderr).toContain('TimeoutStopSecs');
  });
});
