// The Streaming UI: the page over /api (lib/ui/server.ts). Three views, by the URL's hash:
// `#/` the streaming statistics (four timelines with histograms, the batch table), `#/batch/<time>`
// one batch (its stages as a graph, each task attempt, the input it sealed, outputs, dead
// letters), `#/graph` the job's stages. Charts are uPlot's (loaded as the global `uPlot`).
import { drawGraph } from './graph.js';

const main = document.getElementById('main');

/** What the page holds: the job, the batch rows by time, the charts, the last `seq` seen. */
const state = { job: undefined, rows: new Map(), seq: 0, charts: {}, timer: undefined };
// Tests and curious users read the charts' data here: { inputRate: { times, values }, … }.
window.sluiceCharts = {};

const METRICS = [
  { key: 'inputRate', title: 'Input rate', unit: 'records/s', value: (r) => r.records / (state.job.batchInterval / 1000) },
  { key: 'schedulingDelay', title: 'Scheduling delay', unit: 'ms', value: (r) => r.schedulingDelay },
  { key: 'processingDelay', title: 'Processing time', unit: 'ms', value: (r) => r.processingDelay },
  { key: 'totalDelay', title: 'Total delay', unit: 'ms', value: (r) => r.totalDelay },
];

async function api(path) {
  const res = await fetch(path);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  return body;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const iso = (t) => new Date(t).toISOString().replace('T', ' ').replace('Z', '');
const ms = (v) => (v === undefined ? '–' : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(v < 10000 ? 2 : 1)} s`);
const num = (v) => (v === undefined ? '–' : Number(v).toLocaleString('en-US'));

/** Rows with timings (completed or quiet; a failed batch is in the table only), oldest first. */
function timedRows() {
  return [...state.rows.values()].filter((r) => r.status !== 'failed' && r.totalDelay !== undefined).sort((a, b) => a.time - b.time);
}

async function loadBatches() {
  const got = await api(`/api/batches?since=${state.seq}`);
  if (got.full) state.rows.clear();
  for (const r of got.rows) state.rows.set(r.time, r);
  state.seq = got.seq;
}

// ---- the streaming view ------------------------------------------------------------------

function chartWidth(el) {
  return Math.max(300, el.clientWidth - 2);
}

function timeline(el, metric) {
  return new uPlot(
    {
      width: chartWidth(el),
      height: 150,
      legend: { show: false },
      cursor: { points: { size: 6 } },
      scales: { x: { time: true } },
      axes: [{ stroke: '#6b7785' }, { stroke: '#6b7785', size: 64, values: (u, vals) => vals.map((v) => (metric.unit === 'ms' ? ms(v) : num(Math.round(v)))) }],
      series: [{}, { label: metric.title, stroke: '#2b6cb0', width: 1.5, points: { show: true, size: 4, fill: '#2b6cb0' } }],
    },
    [[], []],
    el,
  );
}

function histogram(el, metric) {
  return new uPlot(
    {
      width: chartWidth(el),
      height: 150,
      legend: { show: false },
      cursor: { show: false },
      // Half a bin beyond the first and last bars' centres, so the edge bars are drawn whole.
      scales: { x: { time: false, range: (u, min, max) => (max > min ? [min - (max - min) / 38, max + (max - min) / 38] : [min - 1, max + 1]) } },
      axes: [{ stroke: '#6b7785', values: (u, vals) => vals.map((v) => (metric.unit === 'ms' ? ms(v) : num(Math.round(v)))) }, { stroke: '#6b7785', size: 40 }],
      series: [{}, { label: 'batches', fill: '#63a4e8', stroke: '#2b6cb0', paths: uPlot.paths.bars({ size: [0.9, 60] }), points: { show: false } }],
    },
    [[], []],
    el,
  );
}

/** Counts of `values` in 20 bins between their least and greatest: the histogram's bars. */
function bins(values) {
  if (values.length === 0) return [[], []];
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const n = 20;
  const width = hi > lo ? (hi - lo) / n : 1;
  const counts = new Array(n).fill(0);
  for (const v of values) counts[Math.min(n - 1, Math.floor((v - lo) / width))]++;
  return [counts.map((_, i) => lo + width * (i + 0.5)), counts];
}

function renderStreaming() {
  const job = state.job;
  main.innerHTML = `
    <h1>Streaming statistics</h1>
    <div class="summary" id="summary"></div>
    <div class="charts" id="charts"></div>
    <h2>Batches <small class="muted" id="batchCount"></small></h2>
    <table id="batches"><thead><tr>
      <th class="text">Batch time</th><th>Input records</th><th>Scheduling delay</th><th>Processing time</th><th>Total delay</th>
      <th class="text">Status</th><th>Tasks</th><th>Attempts</th><th class="text">Ran on</th><th>Dead letters</th>
    </tr></thead><tbody></tbody></table>`;
  const charts = document.getElementById('charts');
  state.charts = {};
  for (const m of METRICS) {
    const label = document.createElement('div');
    label.className = 'label';
    label.innerHTML = `${m.title}<small>${m.unit}</small><small id="avg-${m.key}"></small>`;
    const line = document.createElement('div');
    line.className = 'chart timeline';
    line.id = `timeline-${m.key}`;
    const hist = document.createElement('div');
    hist.className = 'chart histogram';
    hist.id = `histogram-${m.key}`;
    charts.append(label, line, hist);
    state.charts[m.key] = { line: timeline(line, m), hist: histogram(hist, m) };
  }
  document.getElementById('summary').dataset.interval = job.batchInterval;
  updateStreaming();
}

function updateStreaming() {
  const rows = timedRows();
  const times = rows.map((r) => r.time / 1000);
  for (const m of METRICS) {
    const values = rows.map((r) => m.value(r));
    const c = state.charts[m.key];
    if (!c) continue;
    c.line.setData([times, values]);
    c.hist.setData(bins(values));
    window.sluiceCharts[m.key] = { times: rows.map((r) => r.time), values };
    const avg = values.length ? values.reduce((a, b) => a + b, 0) / values.length : undefined;
    document.getElementById(`avg-${m.key}`).textContent = avg === undefined ? '' : `avg ${m.unit === 'ms' ? ms(avg) : num(Math.round(avg))}`;
  }
  const all = [...state.rows.values()].sort((a, b) => b.time - a.time);
  const completed = all.filter((r) => r.status !== 'failed').length;
  const failed = all.length - completed;
  const first = rows[0];
  const last = rows[rows.length - 1];
  document.getElementById('summary').innerHTML = [
    `<span>Batch interval <b>${ms(state.job.batchInterval)}</b></span>`,
    `<span><b>${num(completed)}</b> batches done${failed ? `, <b class="error">${failed}</b> failed` : ''}</span>`,
    first ? `<span>from <b>${iso(first.time)}</b> to <b>${iso(last.time)}</b> UTC</span>` : '<span class="muted">no batch yet</span>',
    `<span class="muted">${state.job.live ? 'live' : 'stopped'} · ${esc(state.job.where)}</span>`,
  ].join('');
  document.getElementById('batchCount').textContent = `(${all.length}, newest first)`;
  const body = document.querySelector('#batches tbody');
  body.innerHTML = all
    .slice(0, 1000)
    .map(
      (r) => `<tr class="${r.status}" data-time="${r.time}">
      <td><a href="#/batch/${r.time}">${iso(r.time)}</a></td><td>${num(r.records)}</td><td>${ms(r.schedulingDelay)}</td>
      <td>${ms(r.processingDelay)}</td><td>${ms(r.totalDelay)}</td><td class="text">${r.status}${r.recovered ? ' (recovered)' : ''}</td>
      <td>${r.tasks}</td><td>${r.attempts}${r.failedAttempts ? ` (${r.failedAttempts} failed)` : ''}</td><td class="text">${r.runs}</td><td>${r.deadLetters || ''}</td></tr>`,
    )
    .join('');
}

// ---- one batch -----------------------------------------------------------------------------

function stageTitle(s, i) {
  return `Stage ${i + 1}: ${s.kind}`;
}

async function renderBatch(time) {
  const b = await api(`/api/batch/${time}`);
  const stageIds = new Map(b.stages.map((s, i) => [s.key, i]));
  const taskCount = (s) => new Set(s.tasks.map((t) => t.partition)).size;
  main.innerHTML = `
    <h1>Batch ${iso(b.time)} UTC <small class="muted">(${b.time})</small></h1>
    <div class="summary">
      <span>Status <b class="${b.status === 'failed' ? 'error' : ''}">${b.status}</b>${b.recovered ? ' (recovered from its lineage record)' : ''}</span>
      <span>Input records <b>${num(b.records)}</b></span>
      <span>Scheduling delay <b>${ms(b.schedulingDelay)}</b></span>
      <span>Processing time <b>${ms(b.processingDelay)}</b></span>
      <span>Total delay <b>${ms(b.totalDelay)}</b></span>
      <span>Ran on <b>${b.runs}</b></span>
    </div>
    ${b.error ? `<p class="error">${esc(b.error)}</p>` : ''}
    <h2>Stages</h2>
    <div id="stageGraph"></div>
    <div id="stages"></div>
    <h2>Input</h2><div id="input"></div>
    <h2>Outputs</h2><div id="outputs"></div>
    <h2>Dead letters</h2><div id="letters"></div>`;
  if (b.stages.length) {
    const nodes = b.stages.map((s, i) => ({
      id: s.key,
      kind: s.kind,
      title: `${stageTitle(s, i)} (${taskCount(s)} task${taskCount(s) === 1 ? '' : 's'})`,
      lines: [...s.nodes, `max ${ms(Math.max(0, ...s.tasks.map((t) => t.duration)))}, ${s.tasks.length} attempt(s)`],
      href: `#/batch/${b.time}/stage/${i + 1}`,
    }));
    const edges = b.stages.flatMap((s) => s.reads.filter((r) => stageIds.has(r)).map((r) => [r, s.key]));
    document.getElementById('stageGraph').appendChild(drawGraph(nodes, edges));
  } else document.getElementById('stageGraph').innerHTML = '<p class="muted">No stage ran (a batch without output, or one that failed before its first stage).</p>';

  document.getElementById('stages').innerHTML = b.stages
    .map(
      (s, i) => `<h2 id="stage-${i + 1}">${stageTitle(s, i)} <small class="muted">${esc(s.key)} · ${s.partitions} partition(s) · ${esc(s.nodes.join(' → '))}</small></h2>
      <table class="tasks"><thead><tr><th>Partition</th><th>Attempt</th><th class="text">Ran on</th><th>Started</th><th>Duration</th><th>Records in</th><th>Records out</th><th class="text">Status</th></tr></thead><tbody>
      ${s.tasks
        .map(
          (t) => `<tr class="${t.ok ? '' : 'failed'}"><td>${t.partition}</td><td>${t.attempt}</td><td class="text">${t.where}</td><td>+${ms(t.start - (b.schedulingDelay ?? 0))}</td><td>${ms(t.duration)}</td>
          <td>${num(t.recordsIn)}</td><td>${num(t.recordsOut)}</td><td class="text">${t.ok ? 'ok' : `<span class="error">${esc(t.error ?? 'failed')}</span>`}</td></tr>`,
        )
        .join('')}</tbody></table>`,
    )
    .join('');

  const sources = Object.entries(b.input);
  document.getElementById('input').innerHTML = sources.length
    ? sources
        .map(
          ([nodeId, splits]) => `<h3>${esc(nodeId)}</h3><table class="input"><thead><tr><th>Partition</th><th class="text">Sealed range</th></tr></thead><tbody>
          ${splits.map((s, p) => `<tr><td>${p}</td><td class="wrap">${esc(describeSplit(s))}</td></tr>`).join('')}</tbody></table>`,
        )
        .join('')
    : '<p class="muted">No source.</p>';
  document.getElementById('outputs').innerHTML = b.outputs.length ? `<ul>${b.outputs.map((o) => `<li><code>${esc(o)}</code></li>`).join('')}</ul>` : '<p class="muted">Nothing written (no saveAs output, or no record to write).</p>';
  const letters = document.getElementById('letters');
  if (!b.deadLetters) letters.innerHTML = '<p class="muted">None.</p>';
  else {
    const list = await api(`/api/batch/${b.time}/dead-letters`);
    letters.innerHTML = `<p>${b.deadLetters} record(s) set aside.</p><table><thead><tr><th class="text">Operator</th><th class="text">Error</th><th class="text">Record</th></tr></thead><tbody>${list
      .slice(0, 200)
      .map((l) => `<tr><td class="text">${esc(l.node)}</td><td class="wrap">${esc(l.error)}</td><td class="wrap">${esc(JSON.stringify(l.record ?? { key: l.key, records: l.records }))}</td></tr>`)
      .join('')}</tbody></table>`;
  }
}

/** A split as one line: its fields, the open flag and count last. */
function describeSplit(s) {
  const { open, count, ...rest } = s;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  if (count !== undefined) fields.push(`${count} record(s)`);
  if (open) fields.push('open (never sealed)');
  return fields.join('  ');
}

// ---- the job's graph -------------------------------------------------------------------------

async function renderGraph() {
  const job = state.job;
  main.innerHTML = `<h1>Job graph: ${esc(job.name)}</h1><p class="muted" id="graphNote"></p><div id="jobGraph"></div><details><summary>Mermaid</summary><pre id="mermaid"></pre></details>`;
  let nodes;
  let edges;
  if (job.plan) {
    const tasks = (n) => (n === 'splits' ? 'a task per input split' : `${n} task${n === 1 ? '' : 's'}`);
    nodes = job.plan.map((s) => ({ id: `s${s.id}`, kind: s.kind, title: `Stage ${s.id}: ${s.kind}`, lines: [...s.nodes, tasks(s.tasks)] }));
    edges = job.plan.flatMap((s) => s.reads.map((r) => [`s${r}`, `s${s.id}`]));
    document.getElementById('graphNote').textContent = "Each box is a stage of one batch: the operators it runs, split at shuffles. (sluice plan prints the same.)";
    document.getElementById('mermaid').textContent = job.mermaid;
  } else {
    await loadBatches();
    const last = [...state.rows.values()].filter((r) => r.status === 'completed').sort((a, b) => b.time - a.time)[0];
    if (!last) {
      document.getElementById('graphNote').textContent = 'No batch in the history yet, and no job file: give sluice ui the job file to see its plan.';
      return;
    }
    const b = await api(`/api/batch/${last.time}`);
    nodes = b.stages.map((s, i) => ({ id: s.key, kind: s.kind, title: stageTitle(s, i), lines: s.nodes }));
    edges = b.stages.flatMap((s) => s.reads.map((r) => [r, s.key]));
    document.getElementById('graphNote').textContent = `The stages of the last completed batch (${iso(last.time)}): give sluice ui the job file to see its plan.`;
    document.querySelector('details').remove();
  }
  document.getElementById('jobGraph').appendChild(drawGraph(nodes, edges));
}

// ---- routing and polling ---------------------------------------------------------------------

async function route() {
  clearInterval(state.timer);
  const hash = location.hash || '#/';
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.getAttribute('href') === (hash.startsWith('#/graph') ? '#/graph' : hash === '#/' ? '#/' : ''));
  try {
    const batch = /^#\/batch\/(\d+)(?:\/stage\/(\d+))?$/.exec(hash);
    if (batch) {
      await renderBatch(batch[1]);
      if (batch[2]) document.getElementById(`stage-${batch[2]}`)?.scrollIntoView();
    } else if (hash.startsWith('#/graph')) await renderGraph();
    else {
      await loadBatches();
      renderStreaming();
      state.timer = setInterval(poll, state.job.live ? 1000 : 5000);
    }
    document.body.dataset.ready = hash;
  } catch (e) {
    main.innerHTML = `<p class="error">${esc(e.message)}</p>`;
  }
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    await loadBatches();
    updateStreaming();
  } catch (e) {
    document.getElementById('summary').innerHTML = `<span class="error">cannot reach the job: ${esc(e.message)}</span>`;
  } finally {
    polling = false;
  }
}

state.job = await api('/api/job');
document.getElementById('job').textContent = `${state.job.name} · a batch every ${ms(state.job.batchInterval)}`;
window.addEventListener('hashchange', route);
window.addEventListener('resize', () => {
  for (const [key, c] of Object.entries(state.charts)) {
    const line = document.getElementById(`timeline-${key}`);
    const hist = document.getElementById(`histogram-${key}`);
    if (line) c.line.setSize({ width: chartWidth(line), height: 150 });
    if (hist) c.hist.setSize({ width: chartWidth(hist), height: 150 });
  }
});
await route();
