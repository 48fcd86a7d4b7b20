// The image cannot be built here (no registry of base images): these read the
// Dockerfile for what an operator relies on.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../..');
const dockerfile = readFileSync(path.join(REPO, 'Dockerfile'), 'utf8');
/** Instructions of the last stage (the runtime image), continuation lines joined. */
const runtime = dockerfile.split(/^FROM /m).at(-1)!.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const instruction = (name: string) => runtime.filter((l) => l.startsWith(`${name} `));

describe('Dockerfile (runtime stage)', () => {
  it('runs as a non-root user', () => {
    const users = instruction('USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^USER (root|0)(:|$)/);
  });

  it('has a HEALTHCHECK on /healthz', () => {
    expect(instruction('HEALTHCHECK').join('\n')).toContain('/healthz');
  });

  it('puts `nanocdn` on PATH, linked to the package\'s bin and made executable', () => {
    const bin = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { bin: { nanocdn: string } }).bin.nanocdn;
    const run = instruction('RUN').join('\n');
    const link = /ln -s (\S+) (\/usr\/local\/bin|\/usr\/bin)\/nanocdn/.exec(run);
    expect(link, run).not.toBeNull();
    expect(link![1]).toBe(`/app/${bin}`);
    expect(run).toMatch(new RegExp(`chmod \\S*7\\S* /app/${bin.replace(/\./g, '\\.')}`));
    // The linked file runs by its shebang.
    expect(readFileSync(path.join(REPO, 'src', 'cli.ts'), 'utf8')).toMatch(/^#!\/usr\/bin\/env (-S )?node( --[a-z-]+(=[0-9]+)?)*\n/);
  });

  it('the README says how to keep the HEALTHCHECK with podman/buildah', () => {
    const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
    expect(readme).toContain('podman build --format docker');
    expect(readme).toContain('npm link');
  });
});
