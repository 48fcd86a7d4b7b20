// config/grafana-dashboard.json: every query names metrics a node exports
// (scraped from a test node's /metrics) and parses as PromQL (promtool).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/spawn-server.js';
import { hasTool, requirement } from '../helpers/system-tools.js';
import { testNode, type TestNode } from '../helpers/test-node.js';

interface Panel { title: string; type: string; targets?: { expr: string }[]; panels?: Panel[] }
const dashboard = JSON.parse(readFileSync(path.join(REPO_ROOT, 'config', 'grafana-dashboard.json'), 'utf8')) as {
  panels: Panel[]; templating: { list: { name: string; query?: unknown; definition?: string }[] };
};

/** Every PromQL expression of the dashboard: panel targets and the template variables' label_values(). */
function queries(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const walk = (panels: Panel[]) => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) out.push({ where: panel.title, expr: target.expr });
      walk(panel.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const variable of dashboard.templating.list) {
    const match = /^label_values\((\w+),/.exec(variable.definition ?? '');
    if (match) out.push({ where: `variable ${variable.name}`, expr: match[1] });
  }
  return out;
}

/** Metric names an expression uses: nanocdn_* and Prometheus' own `up`. */
function metricsOf(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...withoutStrings.matchAll(/\b(nanocdn_[a-z0-9_]+|up)\b(?!\s*\()/g)].map((m) => m[1]);
}

/** Grafana's variables as PromQL can read them. */
const asPromql = (expr: string) => expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*');

describe('config/grafana-dashboard.json', () => {
  let node: TestNode;
  let exported: Set<string>;
  beforeAll(async () => {
    node = await testNode({ config: { monitoring: { public: true } } });
    await request(node.app).put('/upload/pub/acme/a.txt').send('x').expect(201);
    const text = (await request(node.app).get('/metrics').expect(200)).text;
    exported = new Set();
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exported.add(name);
      if (type === 'histogram') for (const suffix of ['_bucket', '_count', '_sum']) exported.add(`${name}${suffix}`);
    }
  });
  afterAll(() => node.close());

  it('has the panels operators look for', () => {
    const titles = queries().map((q) => q.where).join('\n');
    for (const topic of [/disk used/i, /time to full/i, /refused by reason/i, /evicted/i, /uploads/i, /latency/i, /top tenants/i]) expect(titles).toMatch(topic);
  });

  it('every query names at least one metric, and every nanocdn metric it names is exported by a node', () => {
    const all = queries();
    expect(all.length).toBeGreaterThan(15);
    for (const { where, expr } of all) {
      const names = metricsOf(expr);
      expect(names.length, `${where}: ${expr}`).toBeGreaterThan(0);
      for (const name of names.filter((n) => n !== 'up')) expect(exported.has(name), `${where}: ${name} is not exported`).toBe(true);
    }
    // The check itself can fail: a misspelt metric is caught.
    expect(exported.has('nanocdn_disk_free_byte')).toBe(false);
  });

  const promtool = requirement('promtool', hasTool('promtool'), 'apt-get install prometheus');
  it.runIf(promtool)('every query parses as PromQL (promtool check rules on them as recording rules)', () => {
    const rules = queries().map(({ expr }, i) => `      - record: dashboard:query${i}\n        expr: ${JSON.stringify(asPromql(expr))}`);
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'nanocdn-dash-')), 'rules.yml');
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
    const out = execFileSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect(out).toContain(`SUCCESS: ${rules.length} rules found`);
  });
});
