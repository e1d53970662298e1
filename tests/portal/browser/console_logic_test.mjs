// The console's pure modules under node's test runner: quantities and times as the tables show
// them, the inventory (GPUs with their vGPUs, workloads and where they run), the grouping of
// metric series into charts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantity, bytes, ago, percent } from '../../../src/portal/console/format.js';
import { buildInventory, usedFraction } from '../../../src/portal/console/inventory.js';
import { groupSeries } from '../../../src/portal/console/charts.js';

test('quantities and formatting', () => {
  assert.equal(quantity('80Gi'), 80 * 2 ** 30);
  assert.equal(quantity('312'), 312);
  assert.equal(quantity('500m'), 0.5);
  assert.ok(Number.isNaN(quantity('12Xi')));
  assert.ok(Number.isNaN(quantity(undefined)));
  assert.equal(bytes(80 * 2 ** 30), '80.0 GiB');
  assert.equal(percent(0.256), '26%');
  assert.equal(ago(0), 'never');
  assert.equal(ago(1000, 1000 + 90 * 1000), '1 min ago');
});

test('used fraction from capacity and available', () => {
  assert.equal(usedFraction({ capacity: { vram: '80Gi' }, available: { vram: '20Gi' } }, 'vram'), 0.75);
  assert.ok(Number.isNaN(usedFraction({ capacity: { vram: '0' }, available: { vram: '0' } }, 'vram')));
  assert.ok(Number.isNaN(usedFraction({}, 'tflops')));
});

const obj = (kind, name, body, namespace = '') => ({ kind, namespace, name, resourceVersion: '1', body });

test('inventory: vGPUs on their GPUs, workloads where their pods run', () => {
  const inv = buildInventory([
    obj('GPU', 'gpu-1', { metadata: { labels: { 'tensor-fusion.ai/cordoned': 'true' } },
      status: { gpuModel: 'H100', nodeSelector: { 'kubernetes.io/hostname': 'node-b' }, capacity: { tflops: '100' }, available: { tflops: '25' } } }),
    obj('GPU', 'gpu-0', { status: {} }),
    obj('Pod', 'w-0', { metadata: { labels: { 'tensor-fusion.ai/component': 'worker', 'tensor-fusion.ai/workload': 'llm' },
      annotations: { 'tensor-fusion.ai/gpu-ids': 'gpu-1, gpu-0' } }, spec: { nodeName: 'node-b' } }, 'ml'),
    obj('Pod', 'other', { metadata: {} }, 'ml'),
    obj('TensorFusionWorkload', 'llm', { spec: { replicas: 1 }, status: { readyWorkers: 1 } }, 'ml'),
    obj('TensorFusionWorkload', 'idle', { spec: { replicas: 0 } }, 'ml'),
  ]);
  assert.deepEqual(inv.gpus.map((g) => g.name), ['gpu-0', 'gpu-1']);
  const g1 = inv.gpus[1];
  assert.equal(g1.node, 'node-b');
  assert.equal(g1.cordoned, true);
  assert.equal(g1.tflopsUsed, 0.75);
  assert.deepEqual(g1.vgpus.map((p) => p.name), ['w-0']);
  assert.deepEqual(inv.gpus[0].vgpus.map((p) => p.name), ['w-0']);
  assert.equal(inv.vgpuCount, 1);
  const llm = inv.workloads.find((w) => w.name === 'llm');
  assert.deepEqual(llm.workers.map((w) => [w.node, w.gpuIds]), [['node-b', ['gpu-1', 'gpu-0']]]);
  assert.deepEqual(inv.workloads.find((w) => w.name === 'idle').workers, []);
});

test('metric series grouped per kind and measure, one line per subject', () => {
  const groups = groupSeries({
    'gpu.b.vram': [[1, 0.5]], 'gpu.a.vram': [[1, 0.2]], 'gpu.a.apps': [[1, 2]], plain: [[2, 1]],
    'vgpu.ml/train.v2.vram': [[1, 0.1]], 'vgpu.ml/infer.compute': [[1, 0.3]], 'gpu.a.utilization': [[1, 0.9]],
  });
  assert.deepEqual(groups.map((g) => g.measure), ['gpu.vram', 'gpu.utilization', 'vgpu.compute', 'vgpu.vram', 'gpu.apps', 'plain']);
  assert.deepEqual(groups[0].lines.map((l) => l.label), ['b', 'a']);
  // A pod name with dots stays whole; a vGPU's VRAM is not charted with the GPUs' allocation.
  assert.deepEqual(groups[3].lines.map((l) => l.label), ['ml/train.v2']);
  assert.deepEqual(groupSeries(undefined), []);
});
