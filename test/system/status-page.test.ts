import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteIndex } from '../../src/index/sqlite/sqlite-index.js';
import { UsageHistory } from '../../src/monitoring/usage-history.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { canMountTmpfs, hasTool, mountTmpfs, requirement, type Tmpfs } from '../helpers/system-tools.js';

/**
 * The status page in real headless browsers — Debian's Chromium and Firefox
 * ESR, driven by puppeteer-core (CDP and WebDriver BiDi): nothing is
 * downloaded — against the built node on a real tmpfs: the words, the
 * alerts, the chart, light and dark, 360 px, no console errors, no failed
 * requests; then the same node on a full disk.
 */
interface Engine {
  readonly name: string;
  readonly path: string;
  readonly install: string;
  launch(dark: boolean): Promise<Browser>;
}
const ENGINES: Engine[] = [
  {
    name: 'Chromium',
    path: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    install: 'apt-get install chromium; .ci/run does',
    launch(dark) {
      return puppeteer.launch({
        executablePath: this.path, headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking',
          ...(dark ? ['--force-dark-mode', '--blink-settings=preferredColorScheme=0'] : [])],
      });
    },
  },
  {
    name: 'Firefox',
    path: process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr',
    install: 'apt-get install firefox-esr; .ci/run does',
    // Firefox has no media emulation over BiDi: the colour scheme is a preference of the browser (0 dark, 1 light).
    launch(dark) {
      return puppeteer.launch({
        browser: 'firefox', executablePath: this.path, headless: true,
        extraPrefsFirefox: { 'layout.css.prefers-color-scheme.content-override': dark ? 0 : 1 },
      });
    },
  },
];
const canRunAny = requirement('root + mount (tmpfs)', canMountTmpfs(), 'run as root') &&
  requirement('dd', hasTool('dd'), 'install coreutils');

/** The little of the DOM that the page.evaluate callbacks use: the tests compile without lib "dom". */
interface PageElement {
  readonly textContent: string | null;
  readonly innerText: string;
  readonly dataset: Record<string, string | undefined>;
  readonly classList: { contains(name: string): boolean };
  getAttribute(name: string): string | null;
}
declare function getComputedStyle(element: PageElement): { readonly backgroundColor: string };
declare const document: {
  readonly body: PageElement;
  readonly documentElement: { readonly scrollWidth: number };
  getElementById(id: string): PageElement | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
};

const MiB = 1 << 20;
const HOUR = 3_600_000;
const SHOTS = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-status-shots-'));

const usedOf = async (dir: string) => { const st = await fsp.statfs(dir); return (st.blocks - st.bavail) * st.bsize; };
const sizeOf = async (dir: string) => { const st = await fsp.statfs(dir); return st.blocks * st.bsize; };

async function put(server: SpawnedServer, name: string, bytes: number): Promise<number> {
  try {
    const res = await fetch(`${server.url}/upload/${name}`, { method: 'PUT', body: Buffer.alloc(bytes, 7) });
    return res.status;
  } catch (err) {
    throw new Error(`PUT ${name} failed (${(err as Error).message}); the node printed:\n${server.output()}`, { cause: err });
  }
}

/** What went wrong while the page ran: console errors, page errors, failed or refused requests. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
  page.on('pageerror', (err) => problems.push(`page error: ${(err as Error).message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  page.on('response', (res) => { if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`); });
  return problems;
}

/** The page as a person reads it: state word, alert lines, chart points. */
async function readPage(page: Page) {
  return page.evaluate(() => {
    const line = document.querySelector('#history polyline.used-line');
    return {
      state: document.getElementById('state')!.textContent,
      alerts: [...document.querySelectorAll('#alerts li')].map((li) => li.textContent),
      forecast: document.getElementById('forecast')!.textContent,
      chartPoints: line ? line.getAttribute('points')!.trim().split(/\s+/).length : 0,
      dataPoints: line ? Number(line.dataset.points) : 0,
      freshness: document.getElementById('freshness')!.textContent,
      stale: document.body.classList.contains('stale'),
      tenants: [...document.querySelectorAll('#tenants tbody th')].map((th) => th.textContent),
      tenantRows: [...document.querySelectorAll('#tenants tbody tr')]
        .map((tr) => Array.from((tr as unknown as { children: ArrayLike<{ textContent: string | null }> }).children, (cell) => cell.textContent ?? '')),
      text: document.body.innerText,
    };
  });
}

async function shoot(page: Page, name: string, width: number): Promise<string> {
  await page.setViewport({ width, height: 900 });
  // The charts redraw to the new width (status.js waits 100 ms after a resize).
  await new Promise((resolve) => setTimeout(resolve, 400));
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** The page's background as the browser paints it: the relative luminance (0 black … 1 white) of body's computed colour. */
async function backgroundLuminance(page: Page): Promise<number> {
  const rgb = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const [r, g, b] = (/(\d+)\D+(\d+)\D+(\d+)/.exec(rgb) ?? []).slice(1).map((c) => Number(c) / 255);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/**
 * A node on a 256 MiB tmpfs: other data on the disk, three tenants, 48 h of
 * history that began to climb 6 h ago, a few writes since the node started.
 */
async function populatedNode(tmpfs: Tmpfs): Promise<SpawnedServer> {
  const dataDir = path.join(tmpfs.dir, 'data');
  mkdirSync(dataDir);
  // Something else on the same filesystem (as on the outage night): 90 MiB.
  spawnSync('dd', ['if=/dev/zero', `of=${path.join(tmpfs.dir, 'other.bin')}`, 'bs=1M', 'count=90'], { stdio: 'ignore' });
  const config = { durability: 'none', upload: { maxBytes: '4MiB' }, disk: { minFreeBytes: '24MiB', minFreePercent: 0 } };
  // The injected history ends where the disk is before the first node starts (each start records a sample).
  const historyEnd = Date.now();
  const total = await sizeOf(tmpfs.dir);
  const usedThen = await usedOf(tmpfs.dir);
  const first = await spawnServer({ dataDir, config });
  for (let i = 0; i < 14; i++) expect(await put(first, `pub/acme/cachedtickets/ticket-${i}.pdf`, MiB)).toBe(201);
  for (let i = 0; i < 3; i++) expect(await put(first, `pub/globex/exports/report-${i}.csv`, 2 * MiB)).toBe(201);
  expect(await put(first, 'priv/initech/invoices/inv-1.pdf', 512 * 1024)).toBe(201);
  expect((await fetch(`${first.url}/admin/evict`, { method: 'POST' })).status).toBe(200);
  expect(await first.stop()).toBe(0);

  // History through the node's own UsageHistory on its index, while no node runs: flat for 42 h,
  // then climbing for 6 h at a rate that reaches the reserve about 14 h after the first start.
  const rate = (total - 24 * MiB - usedThen) / 14;
  const index = openSqliteIndex(path.join(dataDir, 'index.sqlite'));
  try {
    const history = new UsageHistory(index.history);
    // What the tenants held a day ago; first, since record() notes the totals of each hour it first sees (the first row wins).
    const dayAgo = Date.now() - 24 * HOUR;
    for (const [tenant, bytes] of [['acme', 0], ['globex', 5 * MiB], ['initech', 512 * 1024]] as const) await history.recordTenant(dayAgo, tenant, bytes);
    for (let k = 287; k >= 1; k--) {
      const hoursAgo = k / 6;
      const wiggle = hoursAgo > 6 ? Math.sin(hoursAgo / 2) * 1.5 * MiB - (hoursAgo - 6) * 0.05 * MiB : 0;
      await history.record(historyEnd - k * 10 * 60_000, Math.round(usedThen - rate * Math.min(hoursAgo, 6) + wiggle));
    }
  } finally {
    await index.close();
  }

  // A tight upload rate, so one upload of globex is throttled (429) and the tenants table counts it.
  const server = await spawnServer({ dataDir, config: { ...config, limits: { tenant: { uploadsPerMinute: 2 } } } });
  for (let i = 0; i < 2; i++) expect(await put(server, `pub/globex/exports/small-${i}.csv`, 64 * 1024)).toBe(201);
  expect(await put(server, 'pub/acme/cachedtickets/ticket-0.pdf', MiB)).toBe(409);
  expect(await put(server, 'pub/acme/cachedtickets/huge.pdf', 5 * MiB)).toBe(413);
  expect(await put(server, 'pub/globex/exports/small-2.csv', 64 * 1024)).toBe(429);
  return server;
}

describe.each(ENGINES)('status page in headless $name', (engine) => {
  if (!canRunAny || !requirement(engine.name.toLowerCase(), existsSync(engine.path), engine.install)) return it.skip(`needs ${engine.name}`);
  let browser: Browser;
  beforeAll(async () => {
    browser = await engine.launch(false);
    console.log(`status page screenshots: ${SHOTS}`);
  }, 60_000);
  afterAll(async () => { await browser?.close(); });

  describe('a node with data', () => {
    let tmpfs: Tmpfs;
    let server: SpawnedServer;
    beforeAll(async () => {
      tmpfs = mountTmpfs(256);
      server = await populatedNode(tmpfs);
    }, 60_000);
    afterAll(async () => { await server?.stop(); tmpfs?.unmount(); });

    it('says the state and the alerts in words, draws every history point, with no console error or failed request', async () => {
      const page = await browser.newPage();
      const problems = watch(page);
      await page.setViewport({ width: 1100, height: 900 });
      await page.goto(`${server.url}/status`, { waitUntil: 'networkidle0' });
      await page.waitForSelector('#history polyline.used-line');
      const usage = await (await fetch(`${server.url}/usage`)).json() as { status: string; alerts: string[]; alertDetails: { severity: string; text: string }[] };
      const history = await (await fetch(`${server.url}/usage/history?hours=48`)).json() as { points: unknown[] };
      const seen = await readPage(page);

      expect(seen.state).toBe(usage.status.toUpperCase());
      expect(usage.status).toBe('ok');
      // The forecast moves while the node runs (the fit takes the disk as it is now, the index's WAL grows):
      // the page's copy and this later one may round to another tenth of an hour.
      const forecastless = (text: string | null) => (text ?? '').replace(/disk full in \d+\.\d h/, 'disk full in N h');
      expect(seen.alerts.map(forecastless)).toEqual(usage.alertDetails.map((a) => forecastless(`${a.severity === 'critical' ? '✖' : '▲'} ${a.severity.toUpperCase()} ${a.text}`)));
      expect(usage.alerts).toEqual(expect.arrayContaining([
        expect.stringMatching(/^disk full in \d+\.\d h at /),
        '2 writes refused in the last 15 min (upload_too_large 1, rate_limited 1)',
        expect.stringMatching(/^tenant acme grew 14\.0 MiB in 24 h/),
        'tenant globex was throttled 1 time in the last 15 min (limit limits.tenant.uploadsPerMinute: 2 uploads per minute)',
      ]));
      // 287 injected samples (47.8 h) and the nodes' own (one at each start, one a minute), each one point of the line.
      expect(seen.dataPoints).toBeGreaterThanOrEqual(289);
      expect(seen.dataPoints).toBeLessThanOrEqual(history.points.length);
      expect(seen.chartPoints).toBe(seen.dataPoints);
      expect(seen.forecast).toMatch(/^▲ Full in \d+\.\d h \(about \d\d:\d\d UTC\) at [\d.]+ MiB\/h\.$/);
      expect(await page.$$eval('#history line.forecast-line', (lines) => lines.length)).toBe(1);
      expect(seen.tenants[0]).toBe('acme');
      expect(seen.text).toMatch(/Headroom for the next upload\s+[\d.]+ MiB/);
      expect(seen.text).toMatch(/Last 15 min.*\s2\s+1\s+0\s+2: upload_too_large 1, rate_limited 1/);
      // The tenants table: throttled and quota-refused uploads per tenant, 15 min / 24 h.
      const globex = seen.tenantRows.find((row) => row[0] === 'globex')!;
      expect(globex.slice(-2)).toEqual(['1 / 1', '0 / 0']);
      expect(seen.tenantRows.find((row) => row[0] === 'acme')!.slice(-2)).toEqual(['0 / 0', '0 / 0']);
      expect(seen.text).toMatch(/admin\s+0\s+0 B\s+\d+ ms\s+✔ ok/);
      // The only run removed nothing: no last removal to show (lastEviction), the run itself listed (lastRun).
      expect(seen.text).toMatch(/Last removal\s+nothing removed yet/);
      expect(seen.freshness).toMatch(/^Updated \d\d:\d\d UTC/);
      expect(problems).toEqual([]);

      const shotName = (what: string) => `status-${what}-${engine.name.toLowerCase()}`;
      await shoot(page, shotName('ok-1100'), 1100);
      expect(await backgroundLuminance(page)).toBeGreaterThan(0.8);
      await shoot(page, shotName('ok-360'), 360);
      // At 360 px nothing but the tables' own scroll boxes is wider than the screen.
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
      await page.close();

      // Dark: the same page in a browser whose colour scheme is dark, as readable and as free of errors.
      const darkBrowser = await engine.launch(true);
      try {
        const dark = await darkBrowser.newPage();
        const darkProblems = watch(dark);
        await dark.setViewport({ width: 1100, height: 900 });
        await dark.goto(`${server.url}/status`, { waitUntil: 'networkidle0' });
        await dark.waitForSelector('#history polyline.used-line');
        expect((await readPage(dark)).state).toBe(seen.state);
        expect(await backgroundLuminance(dark)).toBeLessThan(0.2);
        await shoot(dark, shotName('ok-dark-1100'), 1100);
        expect(darkProblems).toEqual([]);
      } finally {
        await darkBrowser.close();
      }
    }, 60_000);
  });

  describe('the node on a full disk, then gone', () => {
    let tmpfs: Tmpfs;
    let server: SpawnedServer;
    beforeAll(async () => {
      tmpfs = mountTmpfs(48);
      server = await spawnServer({ dataDir: tmpfs.dir, config: { disk: { minFreeBytes: '12MiB', minFreePercent: 0 } } });
      expect(await put(server, 'pub/acme/a.bin', MiB)).toBe(201);
      // Filled behind the node's back; dd stops at ENOSPC.
      spawnSync('dd', ['if=/dev/zero', `of=${path.join(tmpfs.dir, 'filler.bin')}`, 'bs=1M'], { stdio: 'ignore' });
    }, 60_000);
    afterAll(async () => { await server?.stop(); tmpfs?.unmount(); });

    it('shows CRITICAL and the disk alert first; marks the figures stale once the node stops answering', async () => {
      const page = await browser.newPage();
      const problems = watch(page);
      await page.setViewport({ width: 1100, height: 900 });
      await page.goto(`${server.url}/status?refresh=2`, { waitUntil: 'networkidle0' });
      await page.waitForFunction(() => document.getElementById('state')!.textContent === 'CRITICAL', { timeout: 15_000 });
      const seen = await readPage(page);
      expect(seen.alerts[0]).toMatch(/^✖ CRITICAL disk critical: [\d.]+ (B|KiB) free, below the 12\.0 MiB reserve — writes refused$/);
      expect(seen.forecast).toBe('✖ Full now: free space is inside the reserve.');
      expect(seen.text).toMatch(/Headroom for the next upload\s+0 B \(writes refused\)/);
      expect(problems).toEqual([]);
      await shoot(page, `status-critical-${engine.name.toLowerCase()}`, 1100);

      await server.stop();
      await page.waitForFunction(() => document.body.classList.contains('stale'), { timeout: 20_000 });
      const stale = await readPage(page);
      expect(stale.freshness).toMatch(/^✖ STALE: the node has not answered since \d\d:\d\d UTC \(\d+ s ago\) — no connection\. The figures below are old\.$/);
      expect(stale.state).toBe('CRITICAL');
      await shoot(page, `status-stale-${engine.name.toLowerCase()}`, 1100);
      await page.close();
    }, 60_000);
  });
});
