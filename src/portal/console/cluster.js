// One cluster: its header (state, last seen, versions) and tabs over what its agent mirrors.
import { useState } from './vendor/hooks.module.js';
import { html, usePoll, Empty, ErrorNote, Badge } from './ui.js';
import { get, post } from './api.js';
import { ago, bytes, number, percent, quantity } from './format.js';
import { buildInventory } from './inventory.js';
import { Utilization } from './charts.js';
import { Access } from './access.js';

export const kTabs = [['overview', 'Overview'], ['gpus', 'GPUs'], ['workloads', 'Workloads'], ['utilization', 'Utilization'], ['access', 'Access']];

export function clusterState(c) {
  if (c.online) return ['ok', 'online'];
  if (c.revokedAt && !c.enrolled) return ['bad', 'revoked'];
  if (!c.enrolled) return ['muted', 'awaiting agent'];
  return ['warn', 'offline'];
}

function Meter({ fraction }) {
  const ok = Number.isFinite(fraction);
  const w = ok ? Math.round(fraction * 100) : 0;
  return html`<div class="meter" title=${ok ? percent(fraction) : 'unknown'}>
    <div class=${'meter-fill' + (w >= 90 ? ' hot' : w >= 70 ? ' warm' : '')} style=${{ width: w + '%' }}></div><span>${ok ? percent(fraction) : '—'}</span></div>`;
}

function Stat({ label, value, test }) {
  return html`<div class="stat" data-test=${test}><div class="stat-value">${value}</div><div class="stat-label">${label}</div></div>`;
}

const avail = (st, a, t, fmt) => {
  const av = quantity(st[a]), tot = quantity(st[t]);
  return Number.isFinite(tot) ? `${fmt(av)} / ${fmt(tot)}` : '—';
};
const tf = (n) => number(n, 0);

function Overview({ inv }) {
  return html`<div class="stack">
    <div class="stats">
      <${Stat} label="Pools" value=${inv.pools.length} /><${Stat} label="Nodes" value=${inv.nodes.length} />
      <${Stat} label="GPUs" value=${inv.gpus.length} test="stat-gpus" /><${Stat} label="vGPUs" value=${inv.vgpuCount} />
      <${Stat} label="Workloads" value=${inv.workloads.length} />
    </div>
    <section class="card"><h3>Pools</h3>
      ${inv.pools.length === 0 ? html`<${Empty} title="No GPU pools">The cluster has no GPUPool objects yet.<//>`
        : html`<table class="table"><thead><tr><th>Pool</th><th>Phase</th><th>Nodes</th><th>GPUs</th><th>TFLOPs free / total</th><th>VRAM free / total</th></tr></thead>
        <tbody>${inv.pools.map((p) => html`<tr key=${p.name}><td class="strong">${p.name}</td><td>${p.status.phase || '—'}</td>
          <td>${p.status.totalNodes ?? '—'}</td><td>${p.status.totalGPUs ?? '—'}</td>
          <td>${avail(p.status, 'availableTFlops', 'totalTFlops', tf)}</td><td>${avail(p.status, 'availableVRAM', 'totalVRAM', bytes)}</td></tr>`)}</tbody></table>`}
    </section>
    <section class="card"><h3>Nodes</h3>
      ${inv.nodes.length === 0 ? html`<${Empty} title="No GPU nodes">No GPUNode objects are mirrored yet.<//>`
        : html`<table class="table"><thead><tr><th>Node</th><th>Phase</th><th>GPUs</th><th>TFLOPs free / total</th><th>VRAM free / total</th><th>Hypervisor</th></tr></thead>
        <tbody>${inv.nodes.map((n) => html`<tr key=${n.name}><td class="strong">${n.name}</td><td>${n.status.phase || '—'}</td>
          <td>${n.status.totalGPUs ?? '—'}</td><td>${avail(n.status, 'availableTFlops', 'totalTFlops', tf)}</td>
          <td>${avail(n.status, 'availableVRAM', 'totalVRAM', bytes)}</td>
          <td>${(n.status.hypervisorStatus && n.status.hypervisorStatus.hypervisorState) || '—'}</td></tr>`)}</tbody></table>`}
    </section>
  </div>`;
}

// cordonGpu through the command queue; the row shows the command's state until the agent answers.
function CordonButton({ clusterId, gpu, online }) {
  const [cmd, setCmd] = useState(null);
  const [error, setError] = useState(null);
  const send = async () => {
    setError(null);
    try {
      let c = await post(`/clusters/${clusterId}/commands`, { verb: 'cordonGpu', args: { gpu: gpu.name, cordon: !gpu.cordoned }, deadlineSeconds: 120 });
      setCmd(c);
      for (let i = 0; i < 30 && (c.state === 'queued' || c.state === 'sent'); i++) {
        await new Promise((r) => setTimeout(r, 1000));
        c = await get(`/clusters/${clusterId}/commands/${c.id}`);
        setCmd(c);
      }
    } catch (e) { setError(e); }
  };
  const pending = cmd && (cmd.state === 'queued' || cmd.state === 'sent');
  return html`<span class="cordon">
    <button class="btn small" data-test="cordon" disabled=${pending || !online} title=${online ? '' : 'the agent is offline'}
      onClick=${send}>${gpu.cordoned ? 'Uncordon' : 'Cordon'}</button>
    ${cmd && html`<span class=${'cmd-state ' + cmd.state} data-test="command-state">${cmd.state}${cmd.detail ? ': ' + cmd.detail : ''}</span>`}
    ${error && html`<span class="cmd-state failed">${error.message}</span>`}</span>`;
}

function Gpus({ inv, cluster }) {
  if (inv.gpus.length === 0) return html`<${Empty} title="No GPUs">The agent has not reported any GPU objects.<//>`;
  return html`<section class="card"><table class="table" data-test="gpus">
    <thead><tr><th>GPU</th><th>Model</th><th>Node</th><th>Phase</th><th>Compute</th><th>VRAM</th><th>vGPUs</th><th></th></tr></thead>
    <tbody>${inv.gpus.map((g) => html`<tr key=${g.name} data-test="gpu-row" data-gpu=${g.name}>
      <td class="nowrap"><div class="strong">${g.name}</div><div class="mono small muted">${g.uuid}</div></td>
      <td>${g.model || '—'}</td><td class="nowrap">${g.node || '—'}</td>
      <td class="nowrap">${g.phase || '—'} ${g.cordoned ? html`<span data-test="cordoned"><${Badge} kind="warn">cordoned<//></span>` : ''}</td>
      <td><${Meter} fraction=${g.tflopsUsed} /></td><td><${Meter} fraction=${g.vramUsed} /></td>
      <td>${g.vgpus.length === 0 ? html`<span class="muted">none</span>`
        : html`<ul class="vgpus">${g.vgpus.map((p) => html`<li key=${p.namespace + '/' + p.name}>
          <span class="strong">${p.namespace}/${p.name}</span> <span class="muted small">${[p.tflops && p.tflops + ' TFLOPs', p.vram && p.vram + ' VRAM', p.component].filter(Boolean).join(' · ')}</span></li>`)}</ul>`}</td>
      <td class="right"><${CordonButton} clusterId=${cluster.id} gpu=${g} online=${cluster.online} /></td></tr>`)}</tbody></table></section>`;
}

function Workloads({ inv }) {
  if (inv.workloads.length === 0) return html`<${Empty} title="No workloads">No TensorFusionWorkload objects are mirrored.<//>`;
  return html`<section class="card"><table class="table" data-test="workloads">
    <thead><tr><th>Workload</th><th>Phase</th><th>Pool</th><th>Ready / replicas</th><th>Request</th><th>Runs on</th></tr></thead>
    <tbody>${inv.workloads.map((w) => html`<tr key=${w.namespace + '/' + w.name}>
      <td><div class="strong">${w.name}</div><div class="muted small">${w.namespace}${w.qos ? ' · ' + w.qos : ''}${w.local === false ? ' · remote vGPU' : ''}</div></td>
      <td>${w.phase || '—'}</td><td>${w.pool || '—'}</td><td>${w.ready} / ${w.replicas === '' ? w.workerCount : w.replicas}</td>
      <td class="small">${[w.request.tflops && w.request.tflops + ' TFLOPs', w.request.vram && w.request.vram + ' VRAM'].filter(Boolean).join(', ') || '—'}</td>
      <td>${w.workers.length === 0 ? html`<span class="muted">not placed</span>`
        : html`<ul class="vgpus">${w.workers.map((x) => html`<li key=${x.name}><span class="strong">${x.node || '?'}</span>
          <span class="muted small">${x.gpuIds.join(', ')}${x.phase ? ' · ' + x.phase : ''}</span></li>`)}</ul>`}</td></tr>`)}</tbody></table></section>`;
}

export function ClusterPage({ id, tab }) {
  const cluster = usePoll(() => get(`/clusters/${id}`), 5000, [id]);
  const objects = usePoll(() => get(`/clusters/${id}/objects`), 5000, [id]);
  const c = cluster.data;
  if (!c) {
    return cluster.error ? html`<div class="page"><${ErrorNote} error=${cluster.error} /><a href="#/">Back to clusters</a></div>`
      : html`<div class="page"><p class="muted">Loading…</p></div>`;
  }
  const inv = buildInventory((objects.data && objects.data.objects) || []);
  const [kind, label] = clusterState(c);
  const current = kTabs.some(([k]) => k === tab) ? tab : 'overview';
  return html`<div class="page">
    <div class="crumbs"><a href="#/">Clusters</a> / ${c.name}</div>
    <div class="page-head">
      <div><h1 data-test="cluster-name">${c.name}</h1>
        <div class="muted">Agent <span class="mono">${c.agentId}</span>${c.agentVersion ? ' · version ' + c.agentVersion : ''} · last seen ${ago(c.lastSeen)}</div></div>
      <${Badge} kind=${kind}><span data-test="cluster-state">${label}</span><//>
    </div>
    <nav class="tabs">${kTabs.map(([k, l]) => html`<a key=${k} href=${`#/clusters/${id}/${k}`} data-test=${'tab-' + k}
      class=${k === current ? 'active' : ''}>${l}</a>`)}</nav>
    <${ErrorNote} error=${objects.error} />
    ${current === 'overview' && html`<${Overview} inv=${inv} />`}
    ${current === 'gpus' && html`<${Gpus} inv=${inv} cluster=${c} />`}
    ${current === 'workloads' && html`<${Workloads} inv=${inv} />`}
    ${current === 'utilization' && html`<${Utilization} clusterId=${id} />`}
    ${current === 'access' && html`<${Access} cluster=${c} onChanged=${cluster.reload} />`}
  </div>`;
}
