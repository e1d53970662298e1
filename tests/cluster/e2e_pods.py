#!/usr/bin/env python3
"""Issue 13 end to end on the local cluster: a pod as a user writes it (label and annotations
only) goes through the admission webhook, the tensor-fusion scheduler (kube-scheduler with our
extender) and the hypervisor of the node it lands on, and runs in its vGPU."""
import os

from e2e import *  # noqa: F401,F403
from e2e_node import expect_share, expect_vgpu_probe, pod_logs, pod_phase  # noqa: F401

DEMO = os.path.join(ROOT, "deploy", "examples", "local-vgpu-pod.yaml")
DEMO_NS = "tf-e2e-pods"


def case_annotated_local_pod():
    """The README's walkthrough pod (deploy/examples/local-vgpu-pod.yaml): scheduled onto a GPU
    node by our scheduler with `gpu-ids` naming a GPU of that node, its program sees a 1 GiB
    device, cannot allocate past it and gets 30% ± 3 points of the GPU; its workload's status
    says where it ran."""
    ensure_cluster_applied()
    kubectl("create", "namespace", DEMO_NS, check=False)
    kubectl("delete", "pod", "vgpu-demo", "-n", DEMO_NS, "--wait=true", "--timeout=30s", check=False)
    kubectl("apply", "-n", DEMO_NS, "-f", DEMO)
    try:
        try:
            phase = wait_until(180, "the demo pod finished", lambda: pod_phase("vgpu-demo", DEMO_NS) in ("Succeeded", "Failed")
                               and pod_phase("vgpu-demo", DEMO_NS))
        except Failure:
            # What the next reader needs: where the pod stands and why.
            print(kubectl("describe", "pod", "vgpu-demo", "-n", DEMO_NS, check=False).stdout)
            print(kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout)
            raise
        pod = get("pod", "vgpu-demo", ns=DEMO_NS)
        logs = pod_logs("vgpu-demo", DEMO_NS)
        print(logs)
        expect(phase == "Succeeded", f"the demo pod failed: {logs}")
        expect(pod["spec"]["schedulerName"] == "tensor-fusion-scheduler", "the webhook gave it our scheduler")
        ids = pod["metadata"]["annotations"].get("tensor-fusion.ai/gpu-ids", "")
        node = pod["spec"]["nodeName"]
        expect(ids and all(g in {x["metadata"]["name"] for x in gpus_of(node)} for g in ids.split(",")),
               f"gpu-ids {ids!r} names GPUs of {node}, where it ran")
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


if __name__ == "__main__":
    run_cases(globals())
