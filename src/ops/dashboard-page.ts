/**
 * The ops dashboard page: static HTML plus a small script that fetches `data` (same origin, so the browser
 * reuses the Basic credentials it was asked for) and draws uPlot charts, served from node_modules by
 * dashboard.ts (no CDN: tally runs where there is no internet). Refreshes every 15 s.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tally · ops</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/admin/dashboard/assets/uPlot.min.css">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  header { display: flex; align-items: center; gap: 16px; padding: 12px 20px; background: #1d2330; color: #fff; }
  header h1 { font-size: 18px; margin: 0; } header a { color: #9cc3ff; } header .spacer { flex: 1; }
  main { padding: 16px 20px; display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; }
  section { background: #fff; border-radius: 8px; padding: 12px 16px; box-shadow: 0 1px 2px #0002; }
  section h2 { font-size: 15px; margin: 0 0 8px; }
  .tiles { grid-column: 1 / -1; display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
  .tile { background: #fff; border-radius: 8px; padding: 10px 14px; box-shadow: 0 1px 2px #0002; }
  .tile b { display: block; font-size: 22px; } .tile span { color: #5b6475; font-size: 12px; }
  .badge { padding: 3px 10px; border-radius: 12px; font-weight: 600; }
  .ok { background: #d7f5dd; color: #12632a; } .bad { background: #ffd9d6; color: #8f1d12; } .unknown { background: #eee; color: #555; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; } td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eef0f3; }
  td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
  .tabs button { border: 1px solid #c9ced8; background: #fff; padding: 2px 10px; cursor: pointer; }
  .tabs button.on { background: #1d2330; color: #fff; }
  .empty { color: #8a93a3; font-style: italic; }
  section { overflow-x: auto; }
  #webhooks td, #webhooks th, #dead-deliveries td:not(:last-child), #dead-deliveries th { white-space: nowrap; }
  #webhooks th { font-size: 12px; }
</style></head>
<body>
<header><h1>tally · operations</h1><span id="invariants" class="badge unknown">invariants: …</span>
  <span class="spacer"></span><a href="/admin/queues">Bull Board</a><a href="/metrics">/metrics</a><span id="updated"></span></header>
<main>
  <div class="tiles">
    <div class="tile"><b id="t-rate">–</b><span>events/s (last full minute)</span></div>
    <div class="tile"><b id="t-waiting">–</b><span>jobs waiting (all queues)</span></div>
    <div class="tile"><b id="t-failed">–</b><span>failed jobs kept</span></div>
    <div class="tile"><b id="t-dead">–</b><span>dead letters</span></div>
    <div class="tile"><b id="t-outbox">–</b><span>outbox lag</span></div>
    <div class="tile"><b id="t-webhooks-dead">–</b><span>dead webhook deliveries</span></div>
  </div>
  <section><h2>Events per second by queue, last hour</h2><div id="chart-throughput" class="chart"></div></section>
  <section><h2>Outcomes per minute, last hour</h2><div id="chart-outcomes" class="chart"></div></section>
  <section><h2>Usage by source type <span class="tabs" id="usage-tabs"></span></h2><div id="chart-usage" class="chart"></div></section>
  <section><h2>Top consumers <span id="top-window"></span></h2><table id="top"></table></section>
  <section><h2>Outcomes per queue, last hour</h2><table id="outcomes"></table></section>
  <section><h2>Queues</h2><table id="queues"></table></section>
  <section><h2>Failed and dead-lettered: top reasons</h2><table id="reasons"></table></section>
  <section><h2>Webhook deliveries (POST attempts by result)</h2><table id="webhooks"></table></section>
  <section><h2>Dead webhook deliveries, latest (<code>tally webhooks replay</code>)</h2><table id="dead-deliveries"></table></section>
  <section><h2>Alerts sent</h2><table id="alerts"></table></section>
</main>
<script src="/admin/dashboard/assets/uPlot.iife.min.js"></script>
<script>
const PALETTE = ['#2f6fde', '#e8590c', '#2b8a3e', '#ae3ec9', '#c92a2a', '#1098ad', '#f08c00', '#5c940d', '#862e9c', '#495057'];
const charts = {};
let data = null, usageWindow = '24h';
const fmt = (n) => Number(n).toLocaleString('en-US');
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const width = (id) => Math.max(300, document.getElementById(id).clientWidth);

function lineChart(id, xs, series, unit) {
  const names = Object.keys(series);
  const opts = { width: width(id), height: 240, scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
    series: [{}, ...names.map((n, i) => ({ label: n, stroke: PALETTE[i % PALETTE.length], width: 2, value: (u, v) => v == null ? '–' : v.toFixed(unit === '/s' ? 2 : 0) + unit }))],
    axes: [{}, { size: 50 }] };
  const rows = [xs, ...names.map((n) => series[n])];
  charts[id]?.destroy();
  const el = document.getElementById(id);
  el.dataset.series = String(names.length);
  el.dataset.points = String(names.reduce((a, n) => a + series[n].filter((v) => v > 0).length, 0));
  if (names.length === 0) { el.innerHTML = '<p class="empty">no jobs finished in the last hour</p>'; return; }
  el.innerHTML = '';
  charts[id] = new uPlot(opts, rows, el);
}

function usageChart() {
  const id = 'chart-usage', el = document.getElementById(id);
  const rows = data.usage[usageWindow].by_source_type;
  el.dataset.series = '1'; el.dataset.points = String(rows.length);
  charts[id]?.destroy();
  if (rows.length === 0) { el.innerHTML = '<p class="empty">no consumption in this window</p>'; return; }
  el.innerHTML = '';
  const labels = rows.map((r) => r.source_type + ' (' + r.asset + ')');
  const opts = { width: width(id), height: 240, scales: { x: { time: false, range: [-0.5, rows.length - 0.5] }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
    series: [{ value: (u, v) => labels[v] ?? '' }, { label: 'amount consumed', fill: '#2f6fde99', stroke: '#2f6fde', paths: uPlot.paths.bars({ size: [0.6, 80] }), points: { show: false } }],
    axes: [{ values: (u, splits) => splits.map((v) => Number.isInteger(v) ? (labels[v] ?? '') : ''), incrs: [1] }, { size: 60 }] };
  charts[id] = new uPlot(opts, [rows.map((_, i) => i), rows.map((r) => r.amount)], el);
  const top = data.usage[usageWindow].top_consumers;
  document.getElementById('top-window').textContent = '(' + usageWindow + ')';
  document.getElementById('top').innerHTML = '<tr><th>user</th><th>asset</th><th class="n">consumed</th><th class="n">charges</th></tr>' +
    (top.length ? top.map((r) => '<tr><td>' + esc(r.user_id) + '</td><td>' + esc(r.asset) + '</td><td class="n">' + fmt(r.amount) + '</td><td class="n">' + fmt(r.count) + '</td></tr>').join('')
      : '<tr><td colspan="4" class="empty">nobody consumed anything in this window</td></tr>');
}

function render() {
  const t = data.throughput;
  const perSecond = Object.fromEntries(Object.entries(t.by_queue).map(([q, v]) => [q, v.map((n) => n / 60)]));
  lineChart('chart-throughput', t.minutes, perSecond, '/s');
  lineChart('chart-outcomes', t.minutes, t.by_outcome, '');
  usageChart();
  const lastFull = t.minutes.length > 1 ? Object.values(t.by_queue).reduce((a, v) => a + v[v.length - 2], 0) : 0;
  document.getElementById('t-rate').textContent = (lastFull / 60).toFixed(1);
  document.getElementById('t-waiting').textContent = fmt(data.queues.reduce((a, q) => a + (q.counts.waiting || 0), 0));
  document.getElementById('t-failed').textContent = fmt(data.queues.reduce((a, q) => a + (q.counts.failed || 0), 0));
  document.getElementById('t-dead').textContent = fmt(data.dead_letters.total);
  document.getElementById('t-outbox').textContent = data.outbox.pending ? fmt(data.outbox.pending) + ' rows, ' + data.outbox.oldest_seconds.toFixed(1) + ' s' : 'drained';
  const inv = data.invariants, badge = document.getElementById('invariants');
  badge.className = 'badge ' + (inv == null ? 'unknown' : inv.ok ? 'ok' : 'bad');
  badge.textContent = inv == null ? 'invariants: not checked yet' : inv.ok ? 'invariants hold (' + fmt(inv.accounts_checked) + ' accounts, ' + new Date(inv.at).toLocaleTimeString() + ')' : fmt(inv.violations.length) + ' invariant violations';
  document.getElementById('queues').innerHTML = '<tr><th>queue</th><th class="n">waiting</th><th class="n">active</th><th class="n">delayed</th><th class="n">failed</th><th class="n">oldest waiting</th></tr>' +
    data.queues.map((q) => '<tr><td>' + esc(q.queue) + '</td><td class="n">' + fmt(q.counts.waiting) + '</td><td class="n">' + fmt(q.counts.active) + '</td><td class="n">' + fmt(q.counts.delayed) + '</td><td class="n">' + fmt(q.counts.failed) + '</td><td class="n">' + q.oldest_waiting_seconds.toFixed(1) + ' s</td></tr>').join('');
  document.getElementById('outcomes').innerHTML = '<tr><th>queue</th><th>outcome</th><th class="n">jobs</th></tr>' +
    (data.outcomes.length ? data.outcomes.map((o) => '<tr><td>' + esc(o.queue) + '</td><td>' + esc(o.outcome) + '</td><td class="n">' + fmt(o.count) + '</td></tr>').join('')
      : '<tr><td colspan="3" class="empty">no jobs finished in the last hour</td></tr>');
  const reasons = data.dead_letters.top_reasons;
  document.getElementById('reasons').innerHTML = '<tr><th>queue</th><th>code</th><th>example</th><th class="n">jobs</th></tr>' +
    (reasons.length ? reasons.map((r) => '<tr><td>' + esc(r.queue) + '</td><td>' + esc(r.reason_code) + '</td><td>' + esc(r.reason) + '</td><td class="n">' + fmt(r.jobs) + '</td></tr>').join('')
      : '<tr><td colspan="4" class="empty">no dead letters</td></tr>');
  renderWebhooksAndAlerts();
  document.getElementById('updated').textContent = 'updated ' + new Date(data.generated_at).toLocaleTimeString();
  document.body.dataset.ready = 'true';
}

function renderWebhooksAndAlerts() {
  const w = data.webhooks;
  document.getElementById('t-webhooks-dead').textContent = fmt(w.dead_kept);
  const results = ['delivered', 'http_status', 'redirect', 'timeout', 'network', 'refused'];
  document.getElementById('webhooks').innerHTML = '<tr><th>webhook</th>' + results.map((r) => '<th class="n">' + r + '</th>').join('') + '<th class="n">dead</th><th class="n">p95</th></tr>' +
    (w.endpoints.length ? w.endpoints.map((e) => '<tr><td>' + esc(e.webhook) + '</td>' + results.map((r) => '<td class="n">' + fmt(e.by_result[r] || 0) + '</td>').join('') +
      '<td class="n">' + fmt(e.dead) + '</td><td class="n">' + (e.p95_seconds == null ? '–' : '≤ ' + e.p95_seconds + ' s') + '</td></tr>').join('')
      : '<tr><td colspan="9" class="empty">no webhook deliveries yet</td></tr>');
  document.getElementById('dead-deliveries').innerHTML = '<tr><th>delivery</th><th>webhook</th><th>event</th><th class="n">attempts</th><th>last reason</th></tr>' +
    (w.recent_dead.length ? w.recent_dead.map((d) => '<tr><td title="' + esc(d.delivery_id) + '">' + esc(d.delivery_id.slice(0, 14)) + '…</td><td>' + esc(d.webhook_id) + '</td><td>' + esc(d.event_type) + ' ' + esc(d.event_id) + '</td><td class="n">' + fmt(d.attempts) + '</td><td>' + esc(d.failed_reason.slice(0, 120)) + '</td></tr>').join('')
      : '<tr><td colspan="5" class="empty">no dead deliveries</td></tr>');
  document.getElementById('alerts').innerHTML = '<tr><th>kind</th><th>asset</th><th class="n">sent</th></tr>' +
    (data.alerts.length ? data.alerts.map((a) => '<tr><td>' + esc(a.kind) + '</td><td>' + esc(a.asset) + '</td><td class="n">' + fmt(a.count) + '</td></tr>').join('')
      : '<tr><td colspan="3" class="empty">no alerts sent yet</td></tr>');
}

document.getElementById('usage-tabs').innerHTML = ['24h', '7d', '30d'].map((w) => '<button data-w="' + w + '">' + w + '</button>').join(' ');
document.getElementById('usage-tabs').addEventListener('click', (e) => {
  const w = e.target.dataset && e.target.dataset.w; if (!w) return;
  usageWindow = w;
  for (const b of document.querySelectorAll('#usage-tabs button')) b.classList.toggle('on', b.dataset.w === w);
  if (data) usageChart();
});
document.querySelector('#usage-tabs button').classList.add('on');

async function load() {
  try {
    const res = await fetch('/admin/dashboard/data', { credentials: 'same-origin' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    data = await res.json();
    render();
  } catch (err) {
    document.getElementById('updated').textContent = 'refresh failed: ' + err.message;
  }
}
load();
setInterval(load, 15000);
</script>
</body></html>`;
