#!/usr/bin/env python3
"""Issue 13 end to end on the local cluster: a pod as a user writes it (label and annotations
only) goes through the admission webhook, the tensor-fusion scheduler (kube-scheduler with our
extender) and the hypervisor of the node it lands on, and runs in its vGPU."""
import contextlib
import json
import os
import shutil
import urllib.error
import urllib.request

from e2e import *  # noqa: F401,F403
from e2e_node import expect_share, expect_vgpu_probe, pod_logs, pod_phase  # noqa: F401

DEMO = os.path.join(ROOT, "deploy", "examples", "local-vgpu-pod.yaml")
HARD = os.path.join(ROOT, "deploy", "examples", "hard-vgpu-pod.yaml")
MULTI = os.path.join(ROOT, "deploy", "examples", "multi-gpu-pod.yaml")
DEMO_NS = "tf-e2e-pods"


def run_to_end(name, manifest):
    """Applies the example, waits for its pod to end and returns (phase, pod, logs)."""
    kubectl("create", "namespace", DEMO_NS, check=False)
    kubectl("delete", "pod", name, "-n", DEMO_NS, "--wait=true", "--timeout=30s", check=False)
    kubectl("apply", "-n", DEMO_NS, "-f", manifest)
    try:
        phase = wait_until(180, f"{name} finished", lambda: pod_phase(name, DEMO_NS) in ("Succeeded", "Failed")
                           and pod_phase(name, DEMO_NS))
    except Failure:
        # What the next reader needs: where the pod stands and why.
        print(kubectl("describe", "pod", name, "-n", DEMO_NS, check=False).stdout)
        print(kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout)
        raise
    pod = get("pod", name, ns=DEMO_NS)
    logs = pod_logs(name, DEMO_NS)
    print(logs)
    return phase, pod, logs


def expect_gpus_of_its_node(pod):
    ids = pod["metadata"]["annotations"].get("tensor-fusion.ai/gpu-ids", "")
    node = pod["spec"]["nodeName"]
    expect(ids and all(g in {x["metadata"]["name"] for x in gpus_of(node)} for g in ids.split(",")),
           f"gpu-ids {ids!r} names GPUs of {node}, where it ran")
    return ids, node


def case_annotated_local_pod():
    """The README's walkthrough pod (deploy/examples/local-vgpu-pod.yaml): scheduled onto a GPU
    node by our scheduler with `gpu-ids` naming a GPU of that node, its program sees a 1 GiB
    device, cannot allocate past it and gets 30% ± 3 points of the GPU; its workload's status
    says where it ran."""
    ensure_cluster_applied()
    try:
        phase, pod, logs = run_to_end("vgpu-demo", DEMO)
        expect(phase == "Succeeded", f"the demo pod failed: {logs}")
        expect(pod["spec"]["schedulerName"] == "tensor-fusion-scheduler", "the webhook gave it our scheduler")
        ids, node = expect_gpus_of_its_node(pod)
        expect_vgpu_probe(logs, 2**30)
        expect_share(logs, 0.30)
        # Its TensorFusionWorkload (made by the webhook) shows the pod, where it ran and its GPUs.
        workload = pod["metadata"]["labels"]["tensor-fusion.ai/workload"]
        wait_until(20, "the workload's status lists the pod with its node and GPUs", lambda: [
            w for w in (get("tensorfusionworkload", workload, ns=DEMO_NS) or {}).get("status", {}).get("workers", [])
            if w["name"] == "vgpu-demo" and w.get("node") == node and ",".join(w.get("gpuIds", [])) == ids
            and w["phase"] == "Succeeded"])
    finally:
        kubectl("delete", "pod", "vgpu-demo", "-n", DEMO_NS, "--wait=false", check=False)


def pod_events(name):
    """The Events about pod `name` in the demo namespace, as (reason, message) pairs."""
    items = json.loads(kubectl("get", "events", "-n", DEMO_NS, "--field-selector", f"involvedObject.name={name}",
                               "-o", "json").stdout)["items"]
    return [(e["reason"], e.get("message", "")) for e in items]


def run_and_delete(name, manifest, check):
    """Runs the example to its end, hands (pod, logs) to `check`, then deletes the pod and waits
    until the node's hypervisor has removed the pod's directory (region, worker socket, token)."""
    ensure_cluster_applied()
    uid = None
    try:
        phase, pod, logs = run_to_end(name, manifest)
        uid = pod["metadata"]["uid"]
        expect(phase == "Succeeded", f"{name} failed: {logs}")
        check(pod, logs)
    finally:
        kubectl("delete", "pod", name, "-n", DEMO_NS, "--wait=true", "--timeout=60s", check=False)
    pod_dir = f"/run/tensor-fusion/pods/{DEMO_NS}/{uid}"
    wait_until(60, f"the pod's directory {pod_dir} removed", lambda: not os.path.exists(pod_dir))


TIERS_TEMPLATE = """apiVersion: tensor-fusion.ai/v1
kind: SchedulingConfigTemplate
metadata: {name: e2e-vram-tiers}
spec:
  placement: {mode: NodeCompactGPULowLoad}
  hypervisor:
    autoFreezeAndResume:
      autoFreeze:
      - {freezeToMemTTL: 30s, freezeToDiskTTL: 5m, enable: true}
"""


@contextlib.contextmanager
def pool_spec(**fields):
    """The cluster's pool with `fields` added to its spec (schedulingConfigTemplate, capacityConfig)
    while the block runs, through the TensorFusionCluster (the pool's spec is the cluster's to write:
    the controller puts it back); then removed from both again."""
    ensure_cluster_applied()
    kubectl("patch", "tensorfusioncluster", CLUSTER, "--type=json", "-p", json.dumps(
        [{"op": "add", "path": f"/spec/gpuPools/0/specTemplate/{k}", "value": v} for k, v in fields.items()]))

    def contains(have, want):
        return all(contains(have.get(k) or {}, v) if isinstance(v, dict) else have.get(k) == v
                   for k, v in want.items())
    try:
        wait_until(60, f"GPUPool {POOL} has {fields}", lambda: contains((get("gpupool", POOL) or {}).get("spec", {}), fields))
        yield
    finally:
        kubectl("apply", "-f", SAMPLE_CLUSTER)  # the sample sets none of them
        for k in fields:
            kubectl("patch", "tensorfusioncluster", CLUSTER, "--type=json", "-p", json.dumps(
                [{"op": "remove", "path": f"/spec/gpuPools/0/specTemplate/{k}"}]), check=False)
            kubectl("patch", "gpupool", POOL, "--type=json", "-p", json.dumps(
                [{"op": "remove", "path": f"/spec/{k}"}]), check=False)


def with_tiered_pool(run):
    """Runs `run()` while the sample pool's SchedulingConfigTemplate asks for VRAM tiers."""
    kubectl("apply", "-f", "-", input=TIERS_TEMPLATE)
    try:
        with pool_spec(schedulingConfigTemplate="e2e-vram-tiers"):
            run()
    finally:
        kubectl("delete", "schedulingconfigtemplate", "e2e-vram-tiers", "--ignore-not-found", check=False)


def case_local_hard_pod():
    """deploy/examples/hard-vgpu-pod.yaml: hard isolation on the pod's own node. Its image has
    no GPU library; the stub reaches the worker the node's hypervisor started for it on a socket
    in the pod's directory, and that worker holds the pod to its 1 GiB. Deleting the pod stops
    the worker and removes the directory. Its pool's SchedulingConfigTemplate asks for VRAM
    tiers (autoFreeze, every QoS): the hypervisor gives its vGPU those TTLs and says so."""

    def check(pod, logs):
        events = pod_events(pod["metadata"]["name"])
        expect(any(r == "VgpuReady" and "VRAM tiers from its pool: idle 30s to host memory, 300s to disk" in m
                   for r, m in events), f"the vGPU has its pool's tiers: {events}")
        expect_gpus_of_its_node(pod)
        expect("softgpu" not in logs, f"no GPU library in the pod's image: {logs}")
        expect_vgpu_probe(logs, 2**30)
        expect("saxpy over" in logs and ": correct" in logs, f"saxpy's results are correct: {logs}")
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        expect(env.get("TF_REMOTE_WORKER") == "shm:///run/tensor-fusion/vgpu/worker.sock", f"the stub's worker: {env}")
        expect("LD_PRELOAD" not in env, f"no limiter in a hard-isolated pod: {env}")
        expect(any(r == "VgpuReady" for r, _ in pod_events(pod["metadata"]["name"])),
               "the hypervisor said the vGPU is ready")
    with_tiered_pool(lambda: run_and_delete("hard-vgpu-demo", HARD, check))


MOVING_POD = """apiVersion: v1
kind: Pod
metadata:
  name: hard-vgpu-move
  labels: {tensor-fusion.ai/enabled: "true"}
  annotations:
    tensor-fusion.ai/isolation: hard
    tensor-fusion.ai/vram-limit: 1Gi
    tensor-fusion.ai/compute-percent-limit: "30"
spec:
  restartPolicy: Never
  nodeSelector: {kubernetes.io/hostname: tf-gpu-0}  # two GPUs
  containers:
  - name: app
    image: localhost/tensor-fusion-samples-cpu:dev
    imagePullPolicy: Never
    command: [/bin/sh, -c, "compute_load sync 30 && saxpy"]
"""


def hypervisor_api(node, method, path, body=None):
    """(HTTP status, JSON answer) of `node`'s hypervisor."""
    ip = [p["status"]["podIP"] for p in get("pods", selector="app.kubernetes.io/name=tensor-fusion-hypervisor",
                                             ns=NS)["items"] if p["spec"].get("nodeName") == node][0]
    req = urllib.request.Request(f"http://{ip}:8000{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def case_local_hard_pod_moves():
    """A hard pod's vGPU (VRAM tiers from its pool) moved, its program running, to the other GPU
    of its node through the node's hypervisor API: the program (compute_load, then saxpy in a
    new process, which starts at worker.sock) finishes right; the pod's gpu-ids name the new GPU
    and the scheduler's books follow (the GPUs' runningApps); a VgpuMoved Event says where from,
    where to and the pause; moving it to another node is refused with the reason."""
    name = "hard-vgpu-move"

    def run():
        kubectl("create", "namespace", DEMO_NS, check=False)
        kubectl("delete", "pod", name, "-n", DEMO_NS, "--wait=true", "--timeout=30s", check=False)
        kubectl("apply", "-n", DEMO_NS, "-f", "-", input=MOVING_POD)
        uid = None
        try:
            wait_until(90, f"{name} running with its vGPU", lambda: pod_phase(name, DEMO_NS) == "Running" and any(
                r == "VgpuReady" for r, _ in pod_events(name)))
            pod = get("pod", name, ns=DEMO_NS)
            uid = pod["metadata"]["uid"]
            ids, node = expect_gpus_of_its_node(pod)
            vgpu = "pod-" + uid.replace("-", "")
            code, v = hypervisor_api(node, "GET", f"/api/v1/vgpus/{vgpu}")
            expect(code == 200, f"the hypervisor has {vgpu}: {code} {v}")
            to = 1 - v["deviceIndex"]
            code, moved = hypervisor_api(node, "POST", f"/api/v1/vgpus/{vgpu}/migrate", {"device": str(to)})
            print(f"-- moved: {code} {moved}")
            expect(code == 200 and moved["moved"] == 1, f"the pod's program moved: {code} {moved}")
            other = [g["metadata"]["name"] for g in gpus_of(node)
                     if g["status"].get("uuid", "").lower() == moved["to"].lower()]
            expect(other and other[0] != ids, f"the new GPU is another of {node}: {other} vs {ids}")
            wait_until(30, "the pod's gpu-ids name the new GPU", lambda: get("pod", name, ns=DEMO_NS)["metadata"][
                "annotations"].get("tensor-fusion.ai/gpu-ids") == other[0])
            wait_until(30, "a VgpuMoved Event", lambda: any(r == "VgpuMoved" and moved["to"] in m and "paused" in m
                                                            for r, m in pod_events(name)))
            code, far = hypervisor_api(node, "POST", f"/api/v1/vgpus/{vgpu}/migrate", {"device": "127.0.0.1:9"})
            print(f"-- to another node: {code} {far}")
            expect(code == 409 and "belongs to a pod" in far.get("error", ""), f"refused: {code} {far}")

            def books():
                apps = {g["metadata"]["name"]: [p["uid"] for a in g.get("status", {}).get("runningApps", [])
                                                for p in a.get("pods", [])] for g in gpus_of(node)}
                return uid in apps.get(other[0], []) and uid not in apps.get(ids, [])
            wait_until(40, "the GPUs' runningApps show the pod on the new GPU only", books)
            phase = wait_until(120, f"{name} finished", lambda: pod_phase(name, DEMO_NS) in ("Succeeded", "Failed")
                               and pod_phase(name, DEMO_NS))
            logs = pod_logs(name, DEMO_NS)
            print(logs)
            expect(phase == "Succeeded" and "compute_load: pattern sync" in logs and ": correct" in logs,
                   f"the program finished after the move, and saxpy ran at the new worker: {logs}")
        except Failure:
            print(kubectl("describe", "pod", name, "-n", DEMO_NS, check=False).stdout)
            raise
        finally:
            kubectl("delete", "pod", name, "-n", DEMO_NS, "--wait=true", "--timeout=60s", check=False)
        pod_dir = f"/run/tensor-fusion/pods/{DEMO_NS}/{uid}"
        wait_until(60, f"the pod's directory {pod_dir} removed", lambda: not os.path.exists(pod_dir))
    with_tiered_pool(run)


ROUNDS = "/tmp/tf-e2e-rounds"  # the pods' turns, on this host (their nodes' kubelets run here)


def tier_pod(name, vram, program=None):
    """A hard-isolated pod of QoS low on the first H100 of tf-gpu-0 asking for `vram` bytes (request
    and limit); `program`: the bytes tier_program holds (it waits for its turns in ROUNDS, mounted
    at /tmp/rounds), else it only sleeps."""
    gi = f"{vram // 2**20}Mi"
    command = ["tier_program", program, "/tmp/rounds", name, "2", "sparse"] if program else ["sleep", "3600"]
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": DEMO_NS, "labels": {"tensor-fusion.ai/enabled": "true"},
                     "annotations": {"tensor-fusion.ai/isolation": "hard", "tensor-fusion.ai/qos": "low",
                                     "tensor-fusion.ai/vram-request": gi, "tensor-fusion.ai/vram-limit": gi,
                                     "tensor-fusion.ai/compute-percent-limit": "20",
                                     "tensor-fusion.ai/gpu-model": "H100", "tensor-fusion.ai/gpu-indices": "0"}},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [
            {"name": "app", "image": "localhost/tensor-fusion-samples-cpu:dev", "imagePullPolicy": "Never",
             "command": command, "volumeMounts": [{"name": "rounds", "mountPath": "/tmp/rounds"}]}],
            "volumes": [{"name": "rounds", "hostPath": {"path": ROUNDS, "type": "DirectoryOrCreate"}}]}})


def fail(message):
    raise Failure(message)


def vgpu_freezes(node, pod):
    """How many times the hypervisor of `node` froze the vGPU of `pod` (its API's tiers)."""
    hv = [p for p in get("pods", selector="app.kubernetes.io/name=tensor-fusion-hypervisor", ns=NS)["items"]
          if p["spec"].get("nodeName") == node]
    expect(hv and hv[0]["status"].get("podIP"), f"the hypervisor pod of {node} and its IP: {hv}")
    vgpu = "pod-" + pod["metadata"]["uid"].replace("-", "")
    with urllib.request.urlopen(f"http://{hv[0]['status']['podIP']}:8000/api/v1/vgpus/{vgpu}", timeout=5) as r:
        return json.load(r)["usage"]["tiers"]["freezes"]


def case_vram_expansion():
    """Issue 15: a pool that expands VRAM to host memory (vramExpandToHostMem) and tiers its
    vGPUs. Its H100 gets its share of the node's lent host memory (half of the node's, two
    GPUs); two hard pods whose VRAM adds up past the GPU's 80 GiB are scheduled on it and both
    run, each holding most of its limit (sparse: a page every 256 MiB), used in turns: the
    hypervisor freezes the idle one for the other. A third pod past the expanded capacity stays
    Pending, its FailedScheduling naming VRAM. The same expansion without tiers is not applied,
    and a Warning Event on the pool says why."""
    kubectl("apply", "-f", "-", input=TIERS_TEMPLATE)
    kubectl("create", "namespace", DEMO_NS, check=False)
    node = "tf-gpu-0"
    percent = 50
    names = ("expand-a", "expand-b", "expand-c")
    try:
        # Without tiers the expansion would let pods run out of device memory: not applied, said.
        with pool_spec(capacityConfig={"oversubscription": {"vramExpandToHostMem": percent}}):
            said = wait_until(30, "a Warning Event on the pool", lambda: [
                e["message"] for e in get("events", all_namespaces=True)["items"]
                if e["involvedObject"].get("name") == POOL and e["reason"] == "VramExpansionIgnored"
                and e["type"] == "Warning"])
            print(f"-- {POOL}: {said[-1]}")
            expect("tiers no QoS" in said[-1], f"the Event says why: {said}")
        with pool_spec(schedulingConfigTemplate="e2e-vram-tiers",
                       capacityConfig={"oversubscription": {"vramExpandToHostMem": percent, "vramExpandToHostDisk": 0}}):
            gpus = sorted(wait_until(120, f"{node}'s two H100s Running", lambda: node_gpus_ok(node, "H100", 2)),
                          key=lambda g: g["status"].get("index", 0))
            memory = int(quantity(gpus[0]["status"]["capacity"]["vram"]))
            node_vram = sum(int(quantity(g["status"]["capacity"]["vram"])) for g in gpus)
            ram = int(quantity(wait_until(60, f"{node}'s host memory published", lambda: (get("gpunode", node) or {})
                                          .get("status", {}).get("nodeInfo", {}).get("ramSize"))))
            lent = ram * percent // 100 // 2**20 * 2**20  # whole MiB, as src/allocator/expansion.h
            allowance = lent * memory // node_vram
            each = (memory + allowance) // 2 // 2**20 * 2**20  # two of these fit, and add past the memory
            held = each - 256 * 2**20
            print(f"-- H100 {memory / 2**30:.1f} GiB + {allowance / 2**30:.2f} GiB of the node's lent "
                  f"{lent / 2**30:.2f} GiB: two pods of {each / 2**30:.2f} GiB, each holding {held / 2**30:.2f} GiB")
            expect(2 * held > memory, "the two programs' memory adds up past the GPU's")
            shutil.rmtree(ROUNDS, ignore_errors=True)
            os.makedirs(ROUNDS)
            for n in names:
                kubectl("delete", "pod", n, "-n", DEMO_NS, "--wait=true", "--timeout=30s", check=False)
            for n in names[:2]:
                kubectl("apply", "-f", "-", input=tier_pod(n, each, program=str(held)))
            for n in names[:2]:
                wait_until(180, f"{n} running", lambda n=n: pod_phase(n, DEMO_NS) == "Running")
                wait_until(60, f"{n} allocated", lambda n=n: f"{n}: {held} bytes at" in pod_logs(n, DEMO_NS))
            ids = {get("pod", n, ns=DEMO_NS)["metadata"]["annotations"]["tensor-fusion.ai/gpu-ids"] for n in names[:2]}
            expect(ids == {gpus[0]["metadata"]["name"]}, f"both on {gpus[0]['metadata']['name']}: {ids}")
            # A third past what is left of the expanded capacity: refused, VRAM named.
            third = memory + allowance - 2 * each + 2**30
            kubectl("apply", "-f", "-", input=tier_pod(names[2], third))
            refusal = wait_until(120, f"{names[2]} refused", lambda: [
                m for r, m in pod_events(names[2]) if r == "FailedScheduling" and "VRAM" in m])
            print(f"-- {names[2]} ({third / 2**30:.2f} GiB): {refusal[0]}")
            expect(pod_phase(names[2], DEMO_NS) == "Pending", f"{names[2]} stays Pending")
            # The two in turns: each turn needs the other's memory off the device (after a's and
            # b's first turns, each was frozen at least once).
            for rnd in (1, 2):
                for n in names[:2]:
                    open(os.path.join(ROUNDS, f"{n}.go{rnd}"), "w").close()
                    wait_until(120, f"{n} round {rnd}",
                               lambda n=n: os.path.exists(os.path.join(ROUNDS, f"{n}.done{rnd}")) or
                               (pod_phase(n, DEMO_NS) != "Running" and fail(f"{n} ended: {pod_logs(n, DEMO_NS)}")))
                if rnd == 1:  # both wait for their last round: their vGPUs are there
                    freezes = {m: vgpu_freezes(node, get("pod", m, ns=DEMO_NS)) for m in names[:2]}
                    print(f"-- freezes after the first turns: {freezes}")
                    expect(min(freezes.values()) >= 1, f"the hypervisor froze the idle one for each turn: {freezes}")
            for n in names[:2]:
                phase = wait_until(60, f"{n} finished", lambda n=n: pod_phase(n, DEMO_NS) in ("Succeeded", "Failed")
                                   and pod_phase(n, DEMO_NS))
                logs = pod_logs(n, DEMO_NS)
                print(logs)
                expect(phase == "Succeeded" and f"{n}: all rounds correct" in logs, f"{n} failed: {logs}")
    finally:
        for n in names:
            kubectl("delete", "pod", n, "-n", DEMO_NS, "--wait=false", check=False)
        kubectl("delete", "schedulingconfigtemplate", "e2e-vram-tiers", "--ignore-not-found", check=False)
        shutil.rmtree(ROUNDS, ignore_errors=True)


def case_local_multi_gpu_pod():
    """deploy/examples/multi-gpu-pod.yaml: gpu-count 2 on one node. `gpu-ids` names two GPUs of
    that node; the program sees exactly two devices, each of 1 GiB with an allocation past it
    refused; the hypervisor's Event names both GPUs. Deleting the pod removes its directory."""
    def check(pod, logs):
        ids, node = expect_gpus_of_its_node(pod)
        expect(len(set(ids.split(","))) == 2, f"gpu-ids names two GPUs: {ids!r}")
        expect_vgpu_probe(logs, 2**30, devices=2)
        ready = [m for r, m in pod_events(pod["metadata"]["name"]) if r == "VgpuReady"]
        uuids = {g["status"]["uuid"].lower() for g in gpus_of(node) if g["metadata"]["name"] in ids.split(",")}
        expect(ready and all(u in ready[0].lower() for u in uuids),
               f"the hypervisor's VgpuReady names both GPUs {uuids}: {ready}")
    run_and_delete("multi-gpu-demo", MULTI, check)


if __name__ == "__main__":
    run_cases(globals())
