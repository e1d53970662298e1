#!/usr/bin/env python3
"""End-to-end tests of the node side of issue 13 on the local cluster: the hypervisor makes the
vGPU of a pod placed on its node (`gpu-ids`), the pod's program sees it and is held to it, and
the pod's end returns it. The pod here is placed by hand (spec.nodeName) with the annotations,
volumes and environment the webhook and scheduler give a local soft-isolated pod, so this tests
the hypervisor and the limiter in a real pod on a real kubelet, independent of them."""
import json
import os
import re
import signal
import sys

from e2e import *  # noqa: F401,F403  (kubectl, get, wait_until, expect, Failure, ...)

TEST_NS = "tf-e2e-node"
SAMPLES = "localhost/tensor-fusion-samples:dev"
TF_IMAGE = "localhost/tensor-fusion:dev"


def softgpu_driver(container, spec):
    """What a pod on these nodes needs of the node's driver, which on a real GPU node NVIDIA's
    container toolkit provides: the soft GPU (carried by the samples image), its device list
    from the node's /etc/tensor-fusion, its shared state, in timing mode so shares do not
    depend on this machine's load."""
    container.setdefault("env", []).extend([
        {"name": "LD_LIBRARY_PATH", "value": "/opt/softgpu/lib"},
        {"name": "TF_SOFTGPU_CONFIG", "value": "/etc/tensor-fusion/softgpu.json"},
        {"name": "TF_SOFTGPU_STATE_DIR", "value": "/var/run/softgpu"},
        {"name": "TF_SOFTGPU_THREAD_TIME_NS", "value": "100"}])
    container.setdefault("volumeMounts", []).extend([
        {"name": "node-config", "mountPath": "/etc/tensor-fusion", "readOnly": True},
        {"name": "softgpu-state", "mountPath": "/var/run/softgpu"}])
    spec.setdefault("volumes", []).extend([
        {"name": "node-config", "hostPath": {"path": "/etc/tensor-fusion"}},
        {"name": "softgpu-state", "hostPath": {"path": "/run/tensor-fusion"}}])


def local_pod(name, node, gpu, annotations, command):
    """A local soft-isolated pod as the webhook patches it and the scheduler places it."""
    ann = {"tensor-fusion.ai/gpu-ids": gpu, "tensor-fusion.ai/isolation": "soft", **annotations}
    app = {
        "name": "app", "image": SAMPLES, "imagePullPolicy": "Never", "command": ["/bin/sh", "-c", command],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "LD_PRELOAD", "value": "/tensor-fusion/libtensor-fusion-limiter.so"},
            {"name": "TF_VGPU_REGION", "value": "/run/tensor-fusion/vgpu/region"},
            {"name": "TF_VGPU_REGION_WAIT_MS", "value": "60000"}],
        "volumeMounts": [
            {"name": "tf-libs", "mountPath": "/tensor-fusion"},
            {"name": "tf-vgpu", "mountPath": "/run/tensor-fusion/vgpu", "subPathExpr": "$(POD_NAMESPACE)/$(POD_UID)"}]}
    spec = {
        "nodeName": node, "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
        "initContainers": [{
            "name": "inject-lib", "image": TF_IMAGE, "imagePullPolicy": "Never",
            "command": ["/bin/sh", "-c", "cp /opt/tensor-fusion/lib/libtensor-fusion-limiter.so /tensor-fusion/"],
            "volumeMounts": [{"name": "tf-libs", "mountPath": "/tensor-fusion"}]}],
        "containers": [app],
        "volumes": [
            {"name": "tf-libs", "emptyDir": {}},
            {"name": "tf-vgpu", "hostPath": {"path": "/run/tensor-fusion/pods", "type": "DirectoryOrCreate"}}]}
    softgpu_driver(app, spec)
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": TEST_NS,
                     # Already as the webhook leaves it: not labelled enabled, so the webhook
                     # (which would refuse the bad annotations on purpose tested here) passes it.
                     "labels": {"tensor-fusion.ai/component": "worker"},
                     "annotations": ann},
        "spec": spec,
    }


def pod_logs(name, ns=TEST_NS):
    return kubectl("logs", "-n", ns, name, check=False).stdout


def expect_vgpu_probe(logs, total, devices=1):
    """vgpu_probe's report: exactly `devices` devices, each of `total` bytes, an allocation past
    the total refused on each."""
    m = re.search(r"vgpu_probe: (\d+) device\(s\)", logs)
    expect(m and int(m.group(1)) == devices, f"the program sees {devices} device(s), those of its vGPU: {logs}")
    totals = [int(t) for t in re.findall(r"vgpu_probe: device .* total (\d+) free \d+", logs)]
    expect(totals == [total] * devices, f"the program sees {devices} device(s) of {total} bytes: {logs}")
    expect(logs.count("(total + 64 MiB): refused (out of memory)") == devices,
           f"an allocation past the total is refused on each device: {logs}")


def expect_share(logs, limit):
    """compute_load's own measure of its share of the GPU's time: `limit` ± 3 points."""
    m = re.search(r"compute_load: pattern \S+ kernels (\d+) busy_ns (\d+) interval_ns (\d+)", logs)
    expect(m, f"compute_load reported its share: {logs}")
    share = int(m.group(2)) / int(m.group(3))
    print(f"-- share of the GPU's time under a {limit * 100:.0f}% vGPU: {share * 100:.1f}%")
    expect(limit - 0.03 <= share <= limit + 0.03, f"share {share * 100:.1f}% is within {limit * 100:.0f} ± 3 points")


def pod_phase(name, ns=TEST_NS):
    p = get("pod", name, ns=ns)
    return p and p.get("status", {}).get("phase")


def hypervisor_ready(node):
    """The hypervisor pod of `node` is Running and Ready."""
    for p in (get("pods", selector="app.kubernetes.io/name=tensor-fusion-hypervisor", ns=NS) or {"items": []})["items"]:
        if p["spec"].get("nodeName") == node and p["status"].get("phase") == "Running":
            return any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    return False


def host_pod_dir(node, name):
    """The pod's vGPU directory as the node sees it (cluster.sh keeps each node's
    /run/tensor-fusion under TF_CLUSTER_DIR/nodes/<node>/run-tf): <namespace>/<pod UID>."""
    uid = get("pod", name, ns=TEST_NS)["metadata"]["uid"]
    return os.path.join(CLUSTER_DIR, "nodes", node, "run-tf", "pods", TEST_NS, uid)


def case_local_vgpu():
    """A pod with vram-limit 1Gi and compute-percent-limit 30 on tf-gpu-0: the hypervisor makes
    its vGPU; its program sees a 1 GiB device, cannot allocate past it, and gets 30% ± 3 points
    of the GPU's time; the pod's end returns the vGPU and its directory."""
    ensure_cluster_applied()
    gpus = wait_until(60, "tf-gpu-0's GPUs registered", lambda: node_gpus_ok("tf-gpu-0", "H100", 2))
    gpu = sorted(g["metadata"]["name"] for g in gpus)[0]
    kubectl("create", "namespace", TEST_NS, check=False)
    name = "local-vgpu"
    kubectl("delete", "pod", name, "-n", TEST_NS, "--wait=true", "--timeout=30s", check=False)
    pod = local_pod(name, "tf-gpu-0", gpu,
                    {"tensor-fusion.ai/vram-limit": "1Gi", "tensor-fusion.ai/compute-percent-limit": "30",
                     "tensor-fusion.ai/qos": "medium"},
                    "vgpu_probe && compute_load async 4")
    # Its workload, as the webhook makes it: the controller keeps its status from its pods.
    pod["metadata"]["labels"]["tensor-fusion.ai/workload"] = name
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "tensor-fusion.ai/v1", "kind": "TensorFusionWorkload",
        "metadata": {"name": name, "namespace": TEST_NS},
        "spec": {"poolName": POOL, "isLocalGPU": True, "gpuCount": 1,
                 "resources": {"requests": {"tflops": "0", "vram": "1Gi"}, "limits": {"tflops": "0", "vram": "1Gi"}}}}))
    kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:
        wait_until(60, "the hypervisor's VgpuReady Event", lambda: "VgpuReady" in kubectl(
            "get", "events", "-n", TEST_NS, "--field-selector", f"involvedObject.name={name}", "-o", "json").stdout)
        phase = wait_until(120, "the pod finished", lambda: pod_phase(name) in ("Succeeded", "Failed") and pod_phase(name))
        logs = pod_logs(name)
        print(logs)
        expect(phase == "Succeeded", f"the pod failed: {logs}")
        expect_vgpu_probe(logs, 2**30)
        expect_share(logs, 0.30)
        wait_until(20, "the workload's status lists the pod, where it ran and its GPU", lambda: (
            get("tensorfusionworkload", name, ns=TEST_NS) or {}).get("status", {}).get("workers") == [
                {"name": name, "phase": "Succeeded", "ready": False, "node": "tf-gpu-0", "gpuIds": [gpu]}])
        # The pod finished: the vGPU and its directory are returned.
        pod_dir = host_pod_dir("tf-gpu-0", name)
        wait_until(30, "the pod's vGPU directory removed", lambda: not os.path.exists(pod_dir))
    finally:
        kubectl("delete", "pod", name, "-n", TEST_NS, "--wait=false", check=False)
        kubectl("delete", "tensorfusionworkload", name, "-n", TEST_NS, "--wait=false", check=False)


def case_local_vgpu_refused():
    """A pod whose annotations the hypervisor cannot honour gets a Warning Event naming the
    annotation, and its program (waiting for a region that never comes) fails with the
    limiter's clear error instead of running unlimited."""
    gpus = gpus_of("tf-gpu-0")
    gpu = sorted(g["metadata"]["name"] for g in gpus)[0]
    kubectl("create", "namespace", TEST_NS, check=False)
    name = "bad-vgpu"
    kubectl("delete", "pod", name, "-n", TEST_NS, "--wait=true", "--timeout=30s", check=False)
    pod = local_pod(name, "tf-gpu-0", gpu, {"tensor-fusion.ai/vram-limit": "lots"}, "vgpu_probe")
    pod["spec"]["containers"][0]["env"] = [e if e["name"] != "TF_VGPU_REGION_WAIT_MS" else
                                           {"name": e["name"], "value": "3000"}
                                           for e in pod["spec"]["containers"][0]["env"]]
    kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:
        ev = wait_until(60, "a VgpuNotCreated Event", lambda: [e for e in json.loads(kubectl(
            "get", "events", "-n", TEST_NS, "--field-selector", f"involvedObject.name={name}", "-o", "json").stdout)["items"]
            if e["reason"] == "VgpuNotCreated"])
        expect("tensor-fusion.ai/vram-limit" in ev[0]["message"], f"the Event names the annotation: {ev[0]['message']}")
        phase = wait_until(60, "the pod finished", lambda: pod_phase(name) in ("Succeeded", "Failed") and pod_phase(name))
        logs = pod_logs(name)
        expect(phase == "Failed", f"the program did not run unlimited: {logs}")
        expect("Refusing to run unlimited" in logs or "refusing to run unlimited" in logs, f"the limiter says why: {logs}")
    finally:
        kubectl("delete", "pod", name, "-n", TEST_NS, "--wait=false", check=False)


def case_hypervisor_restart():
    """A restarted hypervisor keeps the vGPUs of pods still there (the same region file) and
    returns the vGPU of a pod deleted while it was down."""
    gpus = wait_until(60, "tf-gpu-0's GPUs registered", lambda: node_gpus_ok("tf-gpu-0", "H100", 2))
    gpu = sorted(g["metadata"]["name"] for g in gpus)[0]
    # The earlier cases killed this hypervisor: the kubelet may still be backing off its restart.
    wait_until(120, "tf-gpu-0's hypervisor ready", lambda: hypervisor_ready("tf-gpu-0"))
    kubectl("create", "namespace", TEST_NS, check=False)
    names = ["kept-vgpu", "gone-vgpu"]
    for name in names:
        kubectl("delete", "pod", name, "-n", TEST_NS, "--wait=true", "--timeout=30s", check=False)
        kubectl("apply", "-f", "-", input=json.dumps(local_pod(
            name, "tf-gpu-0", gpu, {"tensor-fusion.ai/vram-limit": "256Mi"}, "vgpu_probe && sleep 300")))
    try:
        dirs = {n: host_pod_dir("tf-gpu-0", n) for n in names}
        regions = {n: os.path.join(dirs[n], "region") for n in names}
        try:
            wait_until(90, "both pods' regions made", lambda: all(os.path.exists(r) for r in regions.values()))
        except Failure:
            print(kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout)
            print(kubectl("logs", "-n", NS, "-l", "app.kubernetes.io/name=tensor-fusion-hypervisor", "--tail=30",
                          "--prefix", check=False).stdout)
            raise
        kept_inode = os.stat(regions["kept-vgpu"]).st_ino
        pid = hypervisor_pid("tf-gpu-0")
        os.kill(pid, signal.SIGSTOP)
        try:
            kubectl("delete", "pod", "gone-vgpu", "-n", TEST_NS, "--grace-period=0", "--force", "--wait=true",
                    "--timeout=30s", check=False)
            wait_until(30, "gone-vgpu deleted", lambda: get("pod", "gone-vgpu", ns=TEST_NS) is None)
            expect(os.path.exists(regions["gone-vgpu"]), "nothing released it while the hypervisor was stopped")
        finally:
            os.kill(pid, signal.SIGKILL)  # the kubelet restarts the container
        wait_until(60, "the restarted hypervisor released gone-vgpu's vGPU",
                   lambda: not os.path.exists(dirs["gone-vgpu"]))
        expect(os.path.exists(regions["kept-vgpu"]) and os.stat(regions["kept-vgpu"]).st_ino == kept_inode,
               "kept-vgpu's region is the same file after the restart")
        expect(pod_phase("kept-vgpu") == "Running", "kept-vgpu still runs")
    finally:
        for name in names:
            kubectl("delete", "pod", name, "-n", TEST_NS, "--grace-period=0", "--force", "--wait=false", check=False)


if __name__ == "__main__":
    run_cases(globals())
