#!/usr/bin/env python3
"""End-to-end tests of TensorFusion's scheduling on the local cluster: worker pods with the
normalised annotations (as the webhook writes them; created by hand here) and
`schedulerName: tensor-fusion-scheduler` go through the second kube-scheduler
(scripts/cluster.sh scheduler-up) and our extender in the leading controller.
GPUs: tf-gpu-0 2x H100 (80Gi), tf-gpu-1 1x L4 (22.5Gi). Each case uses its own namespace."""
import json
import subprocess
import sys
import threading
import urllib.request

from e2e import *  # noqa: F401,F403 (kubectl, get, wait_until, expect, quantity, lease_holder, ...)

PAUSE = "localhost/pause:dev"
EXTENDER_SERVICE = "tensor-fusion-scheduler-extender"


def fresh_namespace(ns):
    kubectl("delete", "namespace", ns, "--wait=true", "--timeout=60s", check=False)
    kubectl("create", "namespace", ns)


def drop_namespace(ns):
    # Pods first with no grace, so their GPUs are free for the next case at once.
    kubectl("delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force", check=False)
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


def worker(name, ns, **annotations):
    ann = {"tensor-fusion.ai/" + k.replace("_", "-"): v for k, v in annotations.items()}
    ann.setdefault("tensor-fusion.ai/gpupool", POOL)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "annotations": ann,
                         # No tensor-fusion.ai/enabled: the webhook leaves these pods alone.
                         "labels": {"tensor-fusion.ai/component": "worker", "tensor-fusion.ai/workload": name}},
            "spec": {"schedulerName": "tensor-fusion-scheduler", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": PAUSE, "imagePullPolicy": "Never"}]}}


def create(pod):
    kubectl("create", "-f", "-", input=json.dumps(pod))


def pod(ns, name):
    return get("pod", name, ns=ns)


def gpu_ids(p):
    return (p or {}).get("metadata", {}).get("annotations", {}).get("tensor-fusion.ai/gpu-ids")


def bound(ns, name):
    p = pod(ns, name)
    return p if p and p["spec"].get("nodeName") and gpu_ids(p) else None


def events(ns, name):
    out = get("events", ns=ns) or {"items": []}
    return [e for e in out["items"] if e["involvedObject"].get("name") == name]


def event_with(ns, name, reason, text):
    for e in events(ns, name):
        if e["reason"] == reason and text in e["message"]:
            return e["message"]
    return None


def gpu_of(node):
    items = gpus_of(node)
    expect(len(items) >= 1, f"GPU objects on {node}")
    return items[0]


def vram_booked_on(gpu):
    """What the pods' gpu-ids annotations book on one GPU, across every namespace: the truth
    the GPU's status.available must follow (pods of earlier cases may still be terminating)."""
    total = 0
    for p in (get("pods", all_namespaces=True) or {"items": []})["items"]:
        ann = p["metadata"].get("annotations", {})
        if gpu in (gpu_ids(p) or "").split(",") and p["status"].get("phase") not in ("Succeeded", "Failed"):
            total += quantity(ann.get("tensor-fusion.ai/vram-request", "0"))
    return total


def extender_get(path):
    """GET from the extender through its Service. Refused or unreachable is a Failure, which
    wait_until retries: right after a failover the Service may route to nobody for a moment."""
    ip = get("service", EXTENDER_SERVICE, ns=NS)["spec"]["clusterIP"]
    try:
        with urllib.request.urlopen(f"http://{ip}:8090{path}", timeout=5) as r:
            return json.loads(r.read())
    except OSError as e:  # URLError, ConnectionRefusedError, timeouts
        raise Failure(f"extender {path}: {e}")


def scheduling_ready():
    """The extender answers (a leader with a rebuilt ledger behind the Service)."""
    ensure_cluster_applied()
    wait_until(60, "GPUs Running", lambda: node_gpus_ok("tf-gpu-1", "L4", 1) and node_gpus_ok("tf-gpu-0", "H100", 2))
    wait_until(60, "the extender serves its ledger", lambda: "gpus" in extender_get("/debug/allocations"))


# ---- cases --------------------------------------------------------------------------------

def case_scheduling_fit():
    """Three pods that together do not fit the L4: two are bound with gpu-ids, the third stays
    Pending with the reason in its FailedScheduling Event; deleting one binds the third; the
    GPU's status.available follows within seconds."""
    scheduling_ready()
    ns = "tf-e2e-fit"
    fresh_namespace(ns)
    try:
        l4 = gpu_of("tf-gpu-1")
        for n in ("a", "b", "c"):
            create(worker(n, ns, tflops_request="10", vram_request="10Gi", gpu_model="L4", qos="medium"))
        wait_until(60, "two of three bound", lambda: sum(bool(bound(ns, n)) for n in "abc") == 2)
        pending = [n for n in "abc" if not bound(ns, n)][0]
        for n in "abc":
            if n != pending:
                expect(gpu_ids(pod(ns, n)) == l4["metadata"]["name"], f"{n} is on the L4: {gpu_ids(pod(ns, n))}")
                expect(pod(ns, n)["spec"]["nodeName"] == "tf-gpu-1", f"{n} bound to tf-gpu-1")
        msg = wait_until(60, f"{pending} has a FailedScheduling Event with the reason",
                         lambda: event_with(ns, pending, "FailedScheduling", "insufficient GPU capacity"))
        print(f"-- event: {msg}")
        expect(pod(ns, pending)["status"]["phase"] == "Pending", f"{pending} Pending")
        cap = quantity(l4["status"]["capacity"]["vram"])
        def available_follows():
            booked = vram_booked_on(l4["metadata"]["name"])
            avail = quantity(gpu_of("tf-gpu-1")["status"]["available"]["vram"])
            if booked < 20 * 2**30 or abs(avail - (cap - booked)) >= 2**20:
                raise Failure(f"available {avail / 2**30:.2f}Gi, capacity {cap / 2**30:.2f}Gi, booked {booked / 2**30:.2f}Gi")
            return True
        wait_until(30, "GPU status.available is the capacity less the 20Gi booked here (and any other pod's)",
                   available_follows)
        apps = gpu_of("tf-gpu-1")["status"].get("runningApps", [])
        expect(sum(a["count"] for a in apps if a.get("namespace") == ns) == 2, f"runningApps lists the two: {apps}")
        victim = [n for n in "abc" if n != pending][0]
        kubectl("delete", "pod", victim, "-n", ns, "--wait=false")
        wait_until(120, f"{pending} bound once {victim} is gone", lambda: bound(ns, pending))
    finally:
        drop_namespace(ns)


def case_scheduling_model():
    """A pod naming a GPU model no node has stays Pending, its Event saying so."""
    scheduling_ready()
    ns = "tf-e2e-model"
    fresh_namespace(ns)
    try:
        create(worker("b200", ns, tflops_request="1", vram_request="1Gi", gpu_model="B200"))
        msg = wait_until(60, "a FailedScheduling Event naming the model",
                         lambda: event_with(ns, "b200", "FailedScheduling", 'no GPU of model "B200"'))
        print(f"-- event: {msg}")
        expect(not pod(ns, "b200")["spec"].get("nodeName"), "not bound")
        expect(not gpu_ids(pod(ns, "b200")), "no gpu-ids")
    finally:
        drop_namespace(ns)


def case_scheduling_quota():
    """A GPUResourceQuota of 2 workers: the third pod is refused with the quota named."""
    scheduling_ready()
    ns = "tf-e2e-quota"
    fresh_namespace(ns)
    try:
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "tensor-fusion.ai/v1", "kind": "GPUResourceQuota",
            "metadata": {"name": "two-workers", "namespace": ns},
            "spec": {"total": {"maxWorkers": 2}}}))
        time.sleep(1)  # the informer sees the quota
        for n in ("q1", "q2", "q3"):
            create(worker(n, ns, tflops_request="1", vram_request="256Mi"))
            if n != "q3":
                wait_until(60, f"{n} bound", lambda n=n: bound(ns, n))
        msg = wait_until(60, "q3's Event names the quota", lambda: event_with(
            ns, "q3", "FailedScheduling", f"GPUResourceQuota {ns}/two-workers: total.maxWorkers is 2"))
        print(f"-- event: {msg}")
        expect(not bound(ns, "q3"), "q3 not bound")
    finally:
        drop_namespace(ns)


def case_scheduling_gang():
    """All of a gang or none: three members that each need most of an H100, on a cluster with
    two, are never bound (the two that fit wait for the third, time out and give their GPUs
    back, with a GangTimeout Event); two members of another gang that fit are both bound."""
    scheduling_ready()
    ns = "tf-e2e-gang"
    fresh_namespace(ns)
    big = dict(tflops_request="1", vram_request="60Gi", gpu_model="H100")
    try:
        for n in ("a1", "a2", "a3"):
            create(worker(n, ns, gang_group_key=f"{ns}/big", gang_required_members="3", gang_timeout="4s", **big))
        # Long enough for the two that fit to be assumed, wait out their timeout and roll back.
        deadline = time.time() + 15
        while time.time() < deadline:
            placed = [n for n in ("a1", "a2", "a3") if (pod(ns, n) or {}).get("spec", {}).get("nodeName")]
            expect(not placed, f"no member of an incomplete gang is bound: {placed}")
            time.sleep(0.5)
        msg = wait_until(30, "a GangTimeout Event", lambda: next(
            (m for n in ("a1", "a2", "a3") for m in [event_with(ns, n, "GangTimeout", "members placed before the timeout")] if m),
            None))
        print(f"-- event: {msg}")
        for n in ("a1", "a2", "a3"):
            kubectl("delete", "pod", n, "-n", ns, "--grace-period=0", "--force", check=False)
        wait_until(60, "the incomplete gang is gone", lambda: not any(pod(ns, n) for n in ("a1", "a2", "a3")))
        for n in ("b1", "b2"):
            create(worker(n, ns, gang_group_key=f"{ns}/pair", gang_required_members="2", gang_timeout="30s", **big))
        wait_until(90, "both members of the gang that fits are bound", lambda: bound(ns, "b1") and bound(ns, "b2"))
        expect(gpu_ids(pod(ns, "b1")) != gpu_ids(pod(ns, "b2")), "one H100 each")
    finally:
        drop_namespace(ns)


def case_scheduling_preemption():
    """A high-QoS pod that does not fit preempts a low-QoS one (deleted, with an Event); a
    low-QoS pod under eviction-protection is not preempted."""
    scheduling_ready()
    ns = "tf-e2e-preempt"
    fresh_namespace(ns)
    try:
        create(worker("guarded", ns, tflops_request="10", vram_request="20Gi", gpu_model="L4", qos="low",
                      eviction_protection="1h"))
        wait_until(60, "guarded bound", lambda: bound(ns, "guarded"))
        create(worker("boss", ns, tflops_request="10", vram_request="10Gi", gpu_model="L4", qos="high"))
        wait_until(60, "boss refused for capacity", lambda: event_with(ns, "boss", "FailedScheduling", "insufficient GPU capacity"))
        time.sleep(3)
        expect(pod(ns, "guarded") and not pod(ns, "guarded")["metadata"].get("deletionTimestamp"),
               "the protected pod is not preempted")
        expect(not event_with(ns, "boss", "Preempting", ""), "no preemption started")
        kubectl("delete", "pod", "guarded", "-n", ns, "--grace-period=0", "--force")
        wait_until(120, "boss bound once the L4 is free", lambda: bound(ns, "boss"))
        kubectl("delete", "pod", "boss", "-n", ns, "--grace-period=0", "--force")
        wait_until(120, "the L4 free", lambda: abs(quantity(gpu_of("tf-gpu-1")["status"]["available"]["vram"]) -
                                                  quantity(gpu_of("tf-gpu-1")["status"]["capacity"]["vram"])) < 2**20)

        create(worker("cheap", ns, tflops_request="10", vram_request="20Gi", gpu_model="L4", qos="low"))
        wait_until(60, "cheap bound", lambda: bound(ns, "cheap"))
        create(worker("vip", ns, tflops_request="10", vram_request="10Gi", gpu_model="L4", qos="high"))
        msg = wait_until(60, "a Preempting Event on vip", lambda: event_with(ns, "vip", "Preempting", f"{ns}/cheap (low)"))
        print(f"-- event: {msg}")
        wait_until(120, "vip bound after cheap is gone", lambda: bound(ns, "vip") and not pod(ns, "cheap"))
    finally:
        drop_namespace(ns)


def case_scheduling_leader_failover():
    """Killing the leading controller while worker pods are created: no GPU is ever booked past
    its capacity (summed from the gpu-ids annotations) and the new leader's ledger equals the
    annotations."""
    scheduling_ready()
    ns = "tf-e2e-failover"
    fresh_namespace(ns)
    try:
        h100s = {g["metadata"]["name"]: quantity(g["status"]["capacity"]["vram"]) for g in gpus_of("tf-gpu-0")}
        names = [f"w{i}" for i in range(8)]  # 30Gi each: two per H100, four of eight fit
        holder = wait_until(60, "a leader", lease_holder)
        holder_pod = holder.rsplit("_", 1)[0]
        pid = int(subprocess.run(["pgrep", "-f", f"tensor-fusion controller.*--identity={holder_pod}"],
                                 capture_output=True, text=True).stdout.split()[0])

        def creator():
            for n in names:
                create(worker(n, ns, tflops_request="10", vram_request="30Gi", gpu_model="H100"))
                time.sleep(0.5)
        t = threading.Thread(target=creator)
        t.start()
        time.sleep(1.2)
        os.kill(pid, signal.SIGKILL)
        t.join()
        wait_until(45, "a new leader", lambda: (lambda h: h if h and h != holder else None)(lease_holder()))

        def settled():
            pods = get("pods", ns=ns)["items"]
            booked = [p for p in pods if gpu_ids(p)]
            if len(booked) == 4 and all(p["spec"].get("nodeName") for p in booked):
                return booked
            raise Failure(f"{len(pods)} pods: " + ", ".join(
                f"{p['metadata']['name']} node={p['spec'].get('nodeName')} gpus={gpu_ids(p)}" for p in pods)
                + f"; booked on H100s: " + ", ".join(f"{g[:12]} {vram_booked_on(g) / 2**30:.0f}Gi" for g in h100s))
        booked = wait_until(60, "four pods bound with gpu-ids", settled)
        time.sleep(2)
        pods = get("pods", ns=ns)["items"]
        per_gpu = {}
        for p in pods:
            for g in (gpu_ids(p) or "").split(","):
                if g:
                    per_gpu[g] = per_gpu.get(g, 0) + quantity(p["metadata"]["annotations"]["tensor-fusion.ai/vram-request"])
        for g, used in per_gpu.items():
            expect(g in h100s, f"{g} is an H100")
            expect(used <= h100s[g], f"{g} booked {used / 2**30:.0f}Gi of {h100s[g] / 2**30:.0f}Gi")
        expect(sum(1 for p in pods if gpu_ids(p)) == 4, "exactly four booked")
        expect(all(p["spec"].get("nodeName") for p in pods if gpu_ids(p)), "every booked pod is bound")
        expect(not any(p["spec"].get("nodeName") for p in pods if not gpu_ids(p)), "no pod bound without gpu-ids")
        ledger = extender_get("/debug/allocations")
        mine = {a["uid"]: sorted(a["gpus"]) for a in ledger["allocations"] if a["namespace"] == ns}
        truth = {p["metadata"]["uid"]: sorted(gpu_ids(p).split(",")) for p in pods if gpu_ids(p)}
        expect(mine == truth, f"the new leader's ledger {mine} equals the annotations {truth}")
        print(f"-- {len(booked)} bound, ledger equals annotations; per GPU: "
              + ", ".join(f"{g[:12]} {u / 2**30:.0f}Gi" for g, u in sorted(per_gpu.items())))
    finally:
        drop_namespace(ns)
    wait_until(60, "controller replicas back to 2 ready",
               lambda: get("deployment", "tensor-fusion-controller", ns=NS)["status"].get("readyReplicas") == 2)


if __name__ == "__main__":
    run_cases(globals())
