// Utilization over time (GET .../metrics): one uPlot chart per measure of a kind of subject (a
// series name is <kind>.<subject>.<measure>, e.g. gpu.<name>.vram, vgpu.<ns>/<pod>.compute), one
// line per subject.
import uPlot from './vendor/uPlot.esm.js';
import { useEffect, useRef } from './vendor/hooks.module.js';
import { html, usePoll, Empty, ErrorNote } from './ui.js';
import { get } from './api.js';

const kPalette = ['#4f46e5', '#0891b2', '#16a34a', '#ea580c', '#db2777', '#7c3aed', '#ca8a04', '#dc2626'];
// What the agent sends (src/agent/README.md): allocation from the GPU objects, and what the
// nodes' hypervisors measure.
const kMeasures = {
  'gpu.tflops': { title: 'Compute allocated (TFLOPs)', fraction: true },
  'gpu.vram': { title: 'VRAM allocated', fraction: true },
  'gpu.utilization': { title: 'GPU busy (measured)', fraction: true },
  'gpu.memory': { title: 'GPU memory used (measured)', fraction: true },
  'vgpu.compute': { title: 'vGPU compute share of its GPU (measured)', fraction: true },
  'vgpu.vram': { title: 'vGPU VRAM used of its limit (measured)', fraction: true },
  'gpu.apps': { title: 'Running apps', fraction: false },
};
const kWindowMs = 30 * 60 * 1000;

// {series: {name: [[ts, v]]}} -> [{measure, lines: [{label, points}]}], measure being
// "<kind>.<measure>" ("gpu.vram") or, for a name without dots, the name.
export function groupSeries(series) {
  const groups = new Map();
  for (const [name, points] of Object.entries(series || {})) {
    const first = name.indexOf('.'), last = name.lastIndexOf('.');
    const twoParts = first > 0 && last > first;
    const measure = twoParts ? name.slice(0, first) + name.slice(last) : name;
    const subject = twoParts ? name.slice(first + 1, last) : name;
    if (!groups.has(measure)) groups.set(measure, []);
    groups.get(measure).push({ label: subject, points });
  }
  // Known measures first, in kMeasures' order; then the others by name.
  const known = Object.keys(kMeasures);
  const rank = (m) => (known.includes(m) ? known.indexOf(m) : known.length);
  return [...groups.entries()].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([measure, lines]) => ({ measure, lines }));
}

function toUplotData(lines) {
  const xs = [...new Set(lines.flatMap((l) => l.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = lines.map((l) => {
    const col = new Array(xs.length).fill(null);
    for (const [t, v] of l.points) col[index.get(t)] = v;
    return col;
  });
  return [xs.map((x) => x / 1000), ...ys];
}

function Chart({ measure, lines }) {
  const el = useRef(null), plot = useRef(null);
  const info = kMeasures[measure] || { title: measure, fraction: false };
  useEffect(() => {
    const fmt = (v) => (v == null ? '—' : info.fraction ? Math.round(v * 100) + '%' : String(Math.round(v * 100) / 100));
    const opts = {
      width: Math.max(320, el.current.clientWidth), height: 220,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: info.fraction ? { range: [0, 1] } : { range: (u, min, max) => [0, Math.max(1, max)] } },
      axes: [{ stroke: '#64748b', grid: { stroke: '#eef0f4' } },
        { stroke: '#64748b', grid: { stroke: '#eef0f4' }, values: (u, vals) => vals.map(fmt), size: 56 }],
      series: [{}, ...lines.map((l, i) => ({ label: l.label, stroke: kPalette[i % kPalette.length], width: 2, spanGaps: true, value: (u, v) => fmt(v) }))],
    };
    plot.current = new uPlot(opts, toUplotData(lines), el.current);
    const ro = new ResizeObserver(() => plot.current && plot.current.setSize({ width: Math.max(320, el.current.clientWidth), height: 220 }));
    ro.observe(el.current);
    return () => { ro.disconnect(); plot.current.destroy(); plot.current = null; };
  }, [lines.map((l) => l.label).join('|'), measure]);
  useEffect(() => { if (plot.current) plot.current.setData(toUplotData(lines)); }, [lines]);
  const points = lines.reduce((n, l) => n + l.points.length, 0);
  return html`<section class="card chart" data-test="chart" data-measure=${measure} data-points=${points}>
    <h3>${info.title}</h3><div class="chart-body" ref=${el}></div></section>`;
}

export function Utilization({ clusterId }) {
  const { data, error, loading } = usePoll(
    () => get(`/clusters/${clusterId}/metrics?since=${Date.now() - kWindowMs}`), 10000, [clusterId]);
  const groups = groupSeries(data && data.series);
  if (loading && !data) return html`<p class="muted">Loading metrics…</p>`;
  return html`<div>
    <${ErrorNote} error=${error} />
    ${groups.length === 0
      ? html`<${Empty} title="No utilization data yet">The agent samples its GPUs every 10 s; charts appear with the first points (the last 30 minutes are shown).<//>`
      : html`<div class="charts">${groups.map((g) => html`<${Chart} key=${g.measure} measure=${g.measure} lines=${g.lines} />`)}</div>`}
  </div>`;
}
