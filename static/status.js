// The nanocdn status page (docs/status-page.md). Plain browser JavaScript, no
// build step: every REFRESH_MS it reads GET /usage and GET /usage/history from
// the node that served it and redraws. Colour never carries meaning alone:
// every state and alert also has a word and a symbol.
'use strict';

/** Every 10 s, or `?refresh=N` seconds (2 to 300). */
const REFRESH_MS = 1000 * Math.min(300, Math.max(2, Number(new URLSearchParams(location.search).get('refresh')) || 10));
/** Older data than this is marked stale (the node stopped answering). */
const STALE_MS = 2.5 * REFRESH_MS;
const HOUR_MS = 3_600_000;
const SVG_NS = 'http://www.w3.org/2000/svg';
const STATES = {
  ok: { icon: '✔', word: 'OK', line: 'Writes are accepted.' },
  warning: { icon: '▲', word: 'WARNING', line: 'Above the high watermark: evictable classes are being evicted. Writes are still accepted.' },
  critical: { icon: '✖', word: 'CRITICAL', line: 'Writes are refused: free space is inside the reserve. Reads and deletes still work.' },
};

let lastGood = null; // { usage, history, atMs }
let lastError = null; // { message, atMs }

// ---- formatting ----------------------------------------------------------

/** 1610612736 → "1.50 GiB" (as the node's alert sentences write it). */
function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = Math.abs(n);
  let i = 0;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
  const text = i === 0 ? String(value) : value.toFixed(value < 10 ? 2 : 1);
  return `${n < 0 ? '−' : ''}${text} ${units[i]}`;
}
const count = (n) => Number(n).toLocaleString('en-US');
const plural = (n, noun) => `${count(n)} ${noun}${n === 1 ? '' : 's'}`;
const percent = (part, whole) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : '–');
/** Time of day in UTC, as the node's logs and alerts write it. */
const clock = (ms) => `${new Date(ms).toISOString().slice(11, 16)} UTC`;
function age(ms) {
  if (ms < 90_000) return `${Math.max(0, Math.round(ms / 1000))} s`;
  if (ms < HOUR_MS) return `${Math.round(ms / 60_000)} min`;
  if (ms < 48 * HOUR_MS) return `${(ms / HOUR_MS).toFixed(1)} h`;
  return `${(ms / (24 * HOUR_MS)).toFixed(1)} d`;
}
const duration = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : age(ms));

// ---- DOM helpers -----------------------------------------------------------

const $ = (id) => document.getElementById(id);

/** An element with text and attributes; children may be nodes or strings. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

/** An SVG element; `text` becomes its text content. */
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Replaces a <dl>'s content with [term, description] pairs. */
function figures(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([term, desc]) => [el('dt', {}, term), el('dd', {}, desc)]));
}

/** Replaces a table body's rows; an empty list shows `empty` across all columns. */
function rows(table, cells, empty) {
  const body = table.tBodies[0];
  const columns = table.tHead.rows[0].cells.length;
  if (cells.length === 0) { body.replaceChildren(el('tr', {}, el('td', { colspan: columns, class: 'muted' }, empty))); return; }
  body.replaceChildren(...cells.map((row) => el('tr', {}, ...row.map((cell, i) => {
    const numeric = table.tHead.rows[0].cells[i].classList.contains('num');
    return el(i === 0 ? 'th' : 'td', i === 0 ? { scope: 'row' } : numeric ? { class: 'num' } : {}, cell);
  }))));
}

/**
 * Empties an SVG but its title, and sizes its viewBox to the pixels it has,
 * so labels stay 12 px at 360 px and at 1100 px wide. Returns that width.
 */
function resetSvg(node, height) {
  for (const child of [...node.children]) if (child.tagName !== 'title') child.remove();
  const width = Math.max(280, Math.round(node.getBoundingClientRect().width) || 600);
  node.setAttribute('viewBox', `0 0 ${width} ${height}`);
  return width;
}

// ---- sections ----------------------------------------------------------------

function drawSummary(u) {
  const state = STATES[u.status] ?? { icon: '?', word: String(u.status).toUpperCase(), line: '' };
  document.body.dataset.state = u.status;
  $('state-icon').textContent = state.icon;
  $('state').textContent = state.word;
  $('where').textContent = u.disk.path;
  const alerts = u.alertDetails ?? u.alerts.map((text) => ({ severity: 'warning', text }));
  const headline = alerts.length === 0 ? 'No alerts.' : `${plural(alerts.length, 'alert')}, most severe first:`;
  $('state-line').textContent = `${state.line} ${headline}`;
  $('alerts').replaceChildren(...alerts.map((a) => el('li', { class: `alert ${a.severity}` },
    el('span', { class: 'severity' }, `${a.severity === 'critical' ? '✖' : '▲'} ${a.severity.toUpperCase()}`), ' ', a.text)));
}

function drawGauge(u) {
  const { disk } = u;
  const node = $('gauge');
  const W = resetSvg(node, 76);
  const x = (b) => (disk.totalBytes > 0 ? (W * b) / disk.totalBytes : 0);
  const bar = { y: 22, h: 26 };
  const fullAt = disk.totalBytes - disk.reserveBytes;
  // The reserve is hatched, not only red.
  const hatch = svg('pattern', { id: 'hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' });
  hatch.append(svg('rect', { width: 6, height: 6, class: 'hatch-bg' }), svg('line', { x1: 0, y1: 0, x2: 0, y2: 6, class: 'hatch-line' }));
  const defs = svg('defs');
  defs.append(hatch);
  node.append(
    defs,
    svg('rect', { x: 0, y: bar.y, width: W, height: bar.h, class: 'gauge-free' }),
    svg('rect', { x: 0, y: bar.y, width: x(disk.usedBytes), height: bar.h, class: 'gauge-used' }),
    svg('rect', { x: x(fullAt), y: bar.y, width: W - x(fullAt), height: bar.h, class: 'gauge-reserve', fill: 'url(#hatch)' }),
    svg('rect', { x: 0.5, y: bar.y, width: W - 1, height: bar.h, class: 'gauge-frame' }),
  );
  // Watermarks above the bar (low to the left of its mark, high to the right), the reserve below.
  const marks = {};
  for (const [pct, label] of [[disk.lowWatermarkPercent, 'low'], [disk.highWatermarkPercent, 'high']]) {
    if (pct === undefined || pct >= 100) continue;
    const at = (W * pct) / 100;
    marks[label] = svg('text', { x: label === 'low' ? at - 4 : at + 4, y: 15, 'text-anchor': label === 'low' ? 'end' : 'start', class: 'label' }, `${label} ${pct} %`);
    node.append(svg('line', { x1: at, x2: at, y1: 8, y2: bar.y + bar.h, class: 'mark' }), marks[label]);
  }
  // On a narrow screen the high label would leave the picture: pull it in, and the low label out of its way.
  if (marks.high) {
    const box = marks.high.getBBox();
    if (box.x + box.width > W) marks.high.setAttribute('x', String(W - box.width));
    if (marks.low) {
      const low = marks.low.getBBox();
      const left = Number(marks.high.getAttribute('x')) - 6;
      if (low.x + low.width > left) marks.low.setAttribute('x', String(left));
    }
  }
  if (disk.reserveBytes > 0) {
    node.append(svg('line', { x1: x(fullAt), x2: x(fullAt), y1: bar.y, y2: bar.y + bar.h + 8, class: 'mark critical-mark' }),
      svg('text', { x: Math.min(x(fullAt), W - 150), y: 70, class: 'label' }, `reserve ${bytes(disk.reserveBytes)} →`));
  }
  node.append(svg('text', { x: 2, y: 70, class: 'label' }, `used ${disk.usedPercent.toFixed(1)} %`));
  $('gauge-title').textContent = `Disk ${disk.usedPercent.toFixed(1)} % used; writes are refused inside the last ${bytes(disk.reserveBytes)}`;
  const headroom = u.headroomBytes ?? Math.max(0, disk.freeBytes - disk.reserveBytes - u.inflight.reservedBytes);
  figures($('disk-figures'), [
    ['Used', `${bytes(disk.usedBytes)} of ${bytes(disk.totalBytes)} (${disk.usedPercent.toFixed(1)} %)`],
    ['Free', `${bytes(disk.freeBytes)} (${percent(disk.freeBytes, disk.totalBytes)})`],
    ['Reserve', `${bytes(disk.reserveBytes)}: writes are refused when free space falls inside it`],
    ['Watermarks', disk.highWatermarkPercent === undefined ? 'not reported'
      : `eviction starts at ${disk.highWatermarkPercent} % used and runs until below ${disk.lowWatermarkPercent} %`],
    ['Headroom for the next upload', `${bytes(headroom)}${u.writable ? '' : ' (writes refused)'}`],
  ]);
}

function drawHistory(u, h) {
  const node = $('history');
  const W = resetSvg(node, 250);
  const { disk, fillRate } = u;
  const now = h.toMs;
  const fullAt = disk.totalBytes - disk.reserveBytes;
  const filling = fillRate.hoursToFull !== null && fillRate.bytesPerHour > 0 && u.status !== 'critical';
  const aheadH = filling ? Math.min(Math.max(fillRate.hoursToFull, 2), 24) : 0;
  const box = { left: 64, right: W - 14, top: 14, bottom: 214 };
  const t0 = now - h.hours * HOUR_MS;
  const t1 = now + aheadH * HOUR_MS;
  const x = (t) => box.left + ((box.right - box.left) * (t - t0)) / (t1 - t0);
  const y = (b) => box.bottom - ((box.bottom - box.top) * b) / Math.max(disk.totalBytes, 1);

  for (const frac of [0, 0.25, 0.5, 0.75, 1]) {
    const b = frac * disk.totalBytes;
    node.append(svg('line', { x1: box.left, x2: box.right, y1: y(b), y2: y(b), class: 'grid' }),
      svg('text', { x: box.left - 6, y: y(b) + 4, 'text-anchor': 'end', class: 'label' }, bytes(b)));
  }
  for (let hAgo = h.hours; hAgo >= -aheadH; hAgo -= 12) {
    const t = now - hAgo * HOUR_MS;
    node.append(svg('line', { x1: x(t), x2: x(t), y1: box.top, y2: box.bottom, class: hAgo === 0 ? 'now' : 'grid' }),
      svg('text', { x: x(t), y: box.bottom + 18, 'text-anchor': 'middle', class: 'label' }, hAgo === 0 ? 'now' : `${hAgo > 0 ? '−' : '+'}${Math.abs(hAgo)} h`));
  }
  node.append(svg('line', { x1: box.left, x2: box.right, y1: y(fullAt), y2: y(fullAt), class: 'full-line' }),
    svg('text', { x: box.left + 4, y: y(fullAt) - 5, class: 'label critical-text' }, `full at ${bytes(fullAt)} (reserve)`));

  const points = h.points.map(([t, b]) => `${x(t).toFixed(1)},${y(b).toFixed(1)}`);
  const line = svg('polyline', { points: points.join(' '), class: 'used-line', 'data-points': h.points.length });
  node.append(line);
  if (h.points.length === 1) node.append(svg('circle', { cx: x(h.points[0][0]), cy: y(h.points[0][1]), r: 3, class: 'used-dot' }));
  // The reading of this moment (samples are a minute apart): where the forecast starts.
  node.append(svg('circle', { cx: x(now), cy: y(disk.usedBytes), r: 4, class: 'now-dot' }));

  if (filling) {
    const tFull = now + fillRate.hoursToFull * HOUR_MS;
    const tEnd = Math.min(tFull, t1);
    const bEnd = disk.usedBytes + fillRate.bytesPerHour * ((tEnd - now) / HOUR_MS);
    node.append(svg('line', { x1: x(now), y1: y(disk.usedBytes), x2: x(tEnd), y2: y(bEnd), class: 'forecast-line' }));
    if (tFull <= t1) node.append(svg('circle', { cx: x(tFull), cy: y(fullAt), r: 5, class: 'forecast-dot' }));
  }

  const full = new Date(now + (fillRate.hoursToFull ?? 0) * HOUR_MS);
  let forecast;
  if (u.status === 'critical') forecast = '✖ Full now: free space is inside the reserve.';
  else if (fillRate.bytesPerHour === null) forecast = 'No forecast yet: the fit needs at least 1 h and 10 samples of history.';
  else if (filling) forecast = `▲ Full in ${fillRate.hoursToFull.toFixed(1)} h (about ${clock(full.getTime())}${fillRate.hoursToFull >= 24 ? `, ${full.toISOString().slice(0, 10)}` : ''}) at ${bytes(fillRate.bytesPerHour)}/h.`;
  else forecast = `✔ Not filling (${bytes(fillRate.bytesPerHour)}/h over the last 6 h${fillRate.bytesPerHour > 0 ? ', no clear trend' : ''}).`;
  $('forecast').textContent = forecast;
  $('history-title').textContent = `Used space, ${count(h.points.length)} points over the last ${h.hours} h. ${forecast}`;
  const span = h.points.length > 0 ? now - h.points[0][0] : 0;
  $('history-note').textContent = `${plural(h.points.length, 'point')}` +
    (h.bucketMs ? ` (${count(h.samples)} samples averaged per ${age(h.bucketMs)})` : '') +
    (h.points.length > 0 && span < (h.hours - 1) * HOUR_MS ? `; history starts ${age(span)} ago` : '') +
    '; the ring is the reading of this moment. Dashed: the fill rate fitted over the last 6 h, drawn forward to the full line.';
}

function quotaUse(t) {
  if (!t.classes) return 'not tracked yet';
  const parts = t.classes.map((c) => {
    // Bytes of uploads in flight count against the quota too.
    const held = c.inflightBytes ? ` + ${bytes(c.inflightBytes)} in flight` : '';
    return c.quotaBytes === null
      ? `${c.class}: ${bytes(c.bytes)}${held}, no quota`
      : `${c.class}: ${bytes(c.bytes)}${held} of ${bytes(c.quotaBytes)} (${percent(c.bytes + (c.inflightBytes ?? 0), c.quotaBytes)})`;
  });
  return parts.join('; ') || '–';
}

/** "15 min / 24 h" counts of a tenant's refusals; older nodes do not send them. */
function perWindow(counts) {
  return counts ? `${count(counts.last15m)} / ${count(counts.last24h)}` : '–';
}

function drawTenants(u) {
  const refusals = (t) => (t.throttled?.last24h ?? 0) + (t.quotaRefused?.last24h ?? 0);
  const tenants = [...u.tenants].sort((a, b) => (b.growth24hBytes ?? -Infinity) - (a.growth24hBytes ?? -Infinity) || b.bytes - a.bytes || refusals(b) - refusals(a));
  rows($('tenants'), tenants.map((t) => [
    t.tenant, t.growth24hBytes === null ? 'no history yet' : `${t.growth24hBytes > 0 ? '+' : ''}${bytes(t.growth24hBytes)}`,
    bytes(t.bytes), count(t.files), quotaUse(t), perWindow(t.throttled), perWindow(t.quotaRefused),
  ]), 'No files stored.');
  $('tenants-note').textContent = 'Sorted by growth among the tenants that hold the most bytes (at most usage.topTenants of them), ' +
    'then tenants throttled or refused in the last 24 h. Throttled: 429 by a limits.tenant limit; quota refused: 507 quota_exceeded; ' +
    'each as last 15 min / last 24 h, counted in this process\'s memory.';
}

function refusedText(refused) {
  if (refused.count === 0) return 'none';
  return `${count(refused.count)}: ` + Object.entries(refused.byReason).sort((a, b) => b[1] - a[1]).map(([reason, n]) => `${reason} ${count(n)}`).join(', ');
}

function drawWrites(u, nowMs) {
  const windows = u.writes ? [['Last 15 min', u.writes.last15m, 15 * 60_000], ['Last 24 h', u.writes.last24h, 24 * HOUR_MS]] : [];
  // Counted in the node's memory: a window longer than the node has run is marked, and said below.
  const young = windows.find(([, w, spanMs]) => nowMs - w.sinceMs < spanMs - 60_000);
  rows($('writes'), windows.map(([label, w, spanMs]) => [
    nowMs - w.sinceMs < spanMs - 60_000 ? `${label} *` : label,
    count(w.uploads.created), count(w.uploads.exists), count(w.uploads.failed), refusedText(w.refused),
  ]), 'not tracked yet');
  $('writes-note').textContent = young ? `* since the node started at ${clock(young[1].sinceMs)}: these counts start over with the process.` : '';
  const { tmp, inflight } = u;
  figures($('write-figures'), [
    ['In flight', `${plural(inflight.uploads, 'upload')} holding ${bytes(inflight.reservedBytes)}`],
    ['Tmp area', tmp.files === 0 ? 'empty' : `${count(tmp.files)} ${tmp.files === 1 ? 'entry' : 'entries'}, ${bytes(tmp.bytes)}, the oldest ${age(tmp.oldestSeconds * 1000)} old`],
  ]);
}

function drawEviction(u, nowMs) {
  const ev = u.eviction;
  const next = ev?.nextRunAt ? Date.parse(ev.nextRunAt) : null;
  figures($('eviction-figures'), [
    ['Next scheduled run', next === null ? 'not scheduled' : `${clock(next)} (in ${age(next - nowMs)})`],
    ['Lock', !ev ? 'not reported' : ev.lockHolderPid === null ? 'free: no run in progress' : `held by process ${ev.lockHolderPid}: a run is in progress`],
    // The last run that removed files, which empty scheduled runs since do not hide.
    ['Last removal', u.lastEviction
      ? `${clock(Date.parse(u.lastEviction.at))} (${age(nowMs - Date.parse(u.lastEviction.at))} ago), ${u.lastEviction.reason}: ${plural(u.lastEviction.files, 'file')}, ${bytes(u.lastEviction.bytes)}`
      : 'nothing removed yet'],
  ]);
  const last = u.lastRun ?? u.lastEviction;
  const runs = ev?.runs ?? (last ? [last] : []);
  rows($('runs'), runs.map((r) => [
    `${r.at.slice(0, 10)} ${r.at.slice(11, 19)}`, r.reason, count(r.files), bytes(r.bytes), duration(r.durationMs),
    r.error ? `✖ failed: ${r.error}` : '✔ ok',
  ]), 'No eviction run recorded yet.');
}

// ---- refresh loop ------------------------------------------------------------

async function getJson(url) {
  const res = await fetch(url, { cache: 'no-store', credentials: 'same-origin' });
  if (!res.ok) {
    let detail = '';
    try { detail = (await res.json()).message ?? ''; } catch { /* not JSON */ }
    throw new Error(`${url} answered ${res.status}${detail ? `: ${detail}` : ''}`);
  }
  return res.json();
}

function drawFreshness() {
  const nowMs = Date.now();
  const stale = lastGood === null || nowMs - lastGood.atMs > STALE_MS;
  document.body.classList.toggle('stale', stale && lastGood !== null);
  const line = $('freshness');
  if (lastGood === null) {
    line.textContent = lastError ? `✖ No data: ${lastError.message}. Retrying every ${REFRESH_MS / 1000} s.` : 'Loading…';
    line.className = lastError ? 'freshness stale-banner' : 'freshness';
    return;
  }
  const ago = age(nowMs - lastGood.atMs);
  if (stale) {
    line.textContent = `✖ STALE: the node has not answered since ${clock(lastGood.atMs)} (${ago} ago)${lastError ? ` — ${lastError.message}` : ''}. The figures below are old.`;
    line.className = 'freshness stale-banner';
  } else {
    line.textContent = `Updated ${clock(lastGood.atMs)} (${ago} ago), every ${REFRESH_MS / 1000} s.`;
    line.className = 'freshness';
  }
}

async function refresh() {
  try {
    const [usage, history] = await Promise.all([getJson('/usage'), getJson('/usage/history?hours=48')]);
    lastGood = { usage, history, atMs: Date.now() };
    lastError = null;
    draw();
  } catch (err) {
    lastError = { message: err instanceof TypeError ? 'no connection' : err.message, atMs: Date.now() };
  }
  drawFreshness();
}

function draw() {
  const { usage, history, atMs } = lastGood;
  document.body.classList.remove('loading');
  drawSummary(usage);
  drawGauge(usage);
  drawHistory(usage, history);
  drawTenants(usage);
  drawWrites(usage, atMs);
  drawEviction(usage, atMs);
}

refresh();
setInterval(refresh, REFRESH_MS);
// The charts are drawn to the pixels they have: redraw when that changes.
let resizing;
addEventListener('resize', () => { clearTimeout(resizing); resizing = setTimeout(() => lastGood && draw(), 100); });
setInterval(drawFreshness, 1000);
