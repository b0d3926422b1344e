/**
 * The dashboard's one page: a table of every process, a throughput and latency chart (plain
 * SVG) and the live streams (MJPEG <img>s), all fed by Server-Sent Events from `/events`.
 * No framework; text from the pipeline goes in through textContent, never as markup.
 */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>framepipe dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
  h1 { font-size: 1.3em; margin: 0 0 .6em; } h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
  table { border-collapse: collapse; background: #fff; }
  th, td { padding: .3em .8em; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
  th:first-child, td:first-child, td.errors, th.errors { text-align: left; }
  .down { color: #b00; } .up { color: #080; }
  #chart { background: #fff; border: 1px solid #ddd; }
  #streams { display: flex; flex-wrap: wrap; gap: 1em; }
  figure { margin: 0; background: #fff; border: 1px solid #ddd; padding: .4em; }
  figure img { display: block; max-width: 480px; max-height: 360px; }
  .legend span { margin-right: 1.2em; } #status { color: #666; font-size: .9em; }
</style>
</head>
<body>
<h1>framepipe <span id="status">connecting…</span></h1>
<table id="procs">
  <thead><tr><th>stage</th><th>pid</th><th>host</th><th>ready</th><th>rate/s</th><th title="time in the stage per job; ingest: end to end">p50 ms</th><th title="time in the stage per job; ingest: end to end">p99 ms</th><th>in flight</th><th>RSS MB</th><th class="errors">errors by code</th></tr></thead>
  <tbody></tbody>
</table>
<h2>Throughput and end-to-end latency (last 2 minutes)</h2>
<div class="legend"><span style="color:#007aff">■ replies/s</span><span style="color:#34c759">■ p50 ms</span><span style="color:#ff3b30">■ p99 ms</span></div>
<svg id="chart" width="720" height="200" viewBox="0 0 720 200"></svg>
<h2>Live streams</h2>
<div id="streams"><p id="nostreams">No stream yet: clients name theirs with the request's <code>stream</code> field.</p></div>
<script>
const tbody = document.querySelector('#procs tbody');
const chart = document.getElementById('chart');
const streamsEl = document.getElementById('streams');
const shown = new Set();
const fmt = (v) => (v === null || v === undefined ? '–' : String(v));

function row(p) {
  const tr = document.createElement('tr');
  tr.dataset.stage = p.stage;
  const errors = Object.entries(p.errors).map(([c, n]) => c + ' ' + n).join(', ');
  const cells = [p.stage, p.pid, p.host, p.ready ? 'ready' : 'not ready', p.rate, fmt(p.p50), fmt(p.p99), p.inflight, p.rssMb, errors || '–'];
  cells.forEach((text, i) => {
    const td = document.createElement('td');
    td.textContent = String(text);
    if (i === 3) td.className = p.ready ? 'up' : 'down';
    if (i === 9) td.className = 'errors';
    tr.appendChild(td);
  });
  return tr;
}

function line(points, max, colour) {
  if (points.length < 2 || !(max > 0)) return '';
  const n = 120, w = 700, h = 170;
  const d = points.map((v, i) => (10 + (w * (n - points.length + i)) / (n - 1)).toFixed(1) + ',' + (185 - (h * (v ?? 0)) / max).toFixed(1)).join(' ');
  return '<polyline fill="none" stroke="' + colour + '" stroke-width="2" points="' + d + '"/>';
}

function drawChart(history) {
  const rate = history.map((p) => p.rate), p50 = history.map((p) => p.p50), p99 = history.map((p) => p.p99);
  const maxRate = Math.max(1, ...rate), maxMs = Math.max(1, ...p99.filter((v) => v !== null));
  chart.innerHTML = '<line x1="10" y1="185" x2="710" y2="185" stroke="#ccc"/>' +
    '<text x="12" y="14" font-size="11" fill="#007aff">' + maxRate.toFixed(1) + ' /s</text>' +
    '<text x="708" y="14" font-size="11" fill="#ff3b30" text-anchor="end">' + maxMs.toFixed(1) + ' ms</text>' +
    line(rate, maxRate, '#007aff') + line(p50, maxMs, '#34c759') + line(p99, maxMs, '#ff3b30');
}

function addStream(name) {
  if (shown.has(name)) return;
  shown.add(name);
  document.getElementById('nostreams')?.remove();
  const fig = document.createElement('figure');
  const img = document.createElement('img');
  img.alt = name;
  img.dataset.stream = name;
  img.src = '/streams/' + encodeURIComponent(name) + '.mjpg';
  const cap = document.createElement('figcaption');
  cap.textContent = name;
  fig.append(img, cap);
  streamsEl.appendChild(fig);
}

const events = new EventSource('/events');
events.onopen = () => (document.getElementById('status').textContent = 'live');
events.onerror = () => (document.getElementById('status').textContent = 'reconnecting…');
events.onmessage = (e) => {
  const snap = JSON.parse(e.data);
  tbody.replaceChildren(...snap.processes.map(row));
  drawChart(snap.history);
  snap.streams.forEach(addStream);
  document.getElementById('status').textContent = 'live · ' + snap.processes.length + ' processes · ' + new Date(snap.time).toLocaleTimeString();
};
</script>
</body>
</html>
`;
