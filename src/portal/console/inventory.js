// The cluster's synced objects (GET .../objects, Kubernetes bodies as the agent mirrors them)
// arranged for the console: pools, nodes, GPUs with the vGPUs (pods) placed on them, workloads
// and where their workers run.
import { at, quantity } from './format.js';

const kGpuIds = 'tensor-fusion.ai/gpu-ids';
const kWorkload = 'tensor-fusion.ai/workload';
const kComponent = 'tensor-fusion.ai/component';
const kCordoned = 'tensor-fusion.ai/cordoned';
const kTflopsRequest = 'tensor-fusion.ai/tflops-request';
const kVramRequest = 'tensor-fusion.ai/vram-request';

const byName = (a, b) => (a.namespace + '/' + a.name).localeCompare(b.namespace + '/' + b.name);

// Used fraction of a GPU-like status: 1 - available/capacity (NaN when unknown).
export function usedFraction(status, field) {
  const cap = quantity(at(status, 'capacity.' + field)), avail = quantity(at(status, 'available.' + field));
  if (!(cap > 0) || !Number.isFinite(avail)) return NaN;
  return Math.min(1, Math.max(0, 1 - avail / cap));
}

export function buildInventory(objects) {
  const of = (kind) => objects.filter((o) => o.kind === kind).sort(byName);
  const pods = of('Pod').map((o) => {
    const meta = o.body.metadata || {};
    const ann = meta.annotations || {}, labels = meta.labels || {};
    return {
      namespace: o.namespace, name: o.name,
      component: labels[kComponent] || '',
      workload: labels[kWorkload] || ann[kWorkload] || '',
      node: at(o.body, 'spec.nodeName') || '',
      phase: at(o.body, 'status.phase') || '',
      gpuIds: (ann[kGpuIds] || '').split(',').map((s) => s.trim()).filter(Boolean),
      tflops: ann[kTflopsRequest] || '', vram: ann[kVramRequest] || '',
    };
  });
  const gpus = of('GPU').map((o) => {
    const st = o.body.status || {};
    const labels = at(o.body, 'metadata.labels') || {};
    const vgpus = pods.filter((p) => p.gpuIds.includes(o.name));
    return {
      name: o.name, status: st,
      model: st.gpuModel || st.model || '', phase: st.phase || '', uuid: st.uuid || '',
      node: Object.values(st.nodeSelector || {}).join(', '),
      cordoned: labels[kCordoned] === 'true',
      tflopsUsed: usedFraction(st, 'tflops'), vramUsed: usedFraction(st, 'vram'),
      capacity: st.capacity || {}, vgpus,
      apps: (st.runningApps || []).reduce((n, a) => n + (a.count || 0), 0),
    };
  });
  const workloads = of('TensorFusionWorkload').map((o) => {
    const spec = o.body.spec || {}, st = o.body.status || {};
    const workers = (st.workers || []).map((w) => ({ name: w.name, node: w.node || '', gpuIds: w.gpuIds || [], phase: w.phase || '' }));
    // Without status.workers, the pods that name the workload tell where it runs.
    const placed = workers.length ? workers
      : pods.filter((p) => p.workload === o.name && p.namespace === o.namespace)
        .map((p) => ({ name: p.name, node: p.node, gpuIds: p.gpuIds, phase: p.phase }));
    return {
      namespace: o.namespace, name: o.name, phase: st.phase || '', pool: spec.poolName || '',
      replicas: spec.replicas ?? '', ready: st.readyWorkers ?? 0, workerCount: st.workerCount ?? placed.length,
      qos: spec.qos || '', local: spec.isLocalGPU, workers: placed,
      request: at(spec, 'resources.requests') || {},
    };
  });
  return {
    clusters: of('TensorFusionCluster'),
    pools: of('GPUPool').map((o) => ({ name: o.name, spec: o.body.spec || {}, status: o.body.status || {} })),
    nodes: of('GPUNode').map((o) => ({ name: o.name, status: o.body.status || {} })),
    gpus, workloads, pods,
    vgpuCount: pods.filter((p) => p.gpuIds.length).length,
  };
}
