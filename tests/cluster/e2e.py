#!/usr/bin/env python3
"""End-to-end tests of TensorFusion on the local cluster (scripts/cluster.sh, installed by
setup.sh with `kubectl apply -k deploy/`). Each case is one CTest test: `e2e.py CASE`.
Nodes: tf-gpu-0 (2 soft H100), tf-gpu-1 (1 soft L4), tf-cpu-0 (no GPU)."""
import json
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLUSTER_DIR = os.environ["TF_CLUSTER_DIR"]
os.environ["KUBECONFIG"] = os.path.join(CLUSTER_DIR, "admin.kubeconfig")
NS = "tensor-fusion-sys"
SAMPLE_CLUSTER = os.path.join(ROOT, "deploy", "samples", "tensorfusioncluster.yaml")
CLUSTER = "shared-tensor-fusion-cluster"
POOL = CLUSTER + "-shared"
H100 = (989.4, 80 * 2**30)
L4 = (121.0, 23034 * 2**20)


class Failure(Exception):
    pass


def kubectl(*args, check=True, input=None):
    p = subprocess.run(["kubectl", "--request-timeout=20s", *args], capture_output=True, text=True, input=input)
    if check and p.returncode != 0:
        raise Failure(f"kubectl {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def get(kind, name=None, selector=None, ns=None, all_namespaces=False):
    args = ["get", kind] + ([name] if name else []) + (["-l", selector] if selector else [])
    args += ["-n", ns] if ns else []
    args += ["--all-namespaces"] if all_namespaces else []
    p = kubectl(*args, "-o", "json", check=False)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)


SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def quantity(q):
    if isinstance(q, (int, float)):
        return float(q)
    m = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)", q)
    if not m or m.group(2) not in SUFFIX:
        raise Failure(f"not a quantity: {q!r}")
    return float(m.group(1)) * SUFFIX[m.group(2)]


def wait_until(secs, what, fn):
    t0 = time.monotonic()
    last = None
    while True:
        try:
            last = fn()
            if last:
                print(f"-- {what}: after {time.monotonic() - t0:.1f}s", flush=True)
                return last
        except Failure as e:
            last = str(e)
        if time.monotonic() - t0 > secs:
            raise Failure(f"{what}: not within {secs}s (last: {last})")
        time.sleep(0.25)


def gpus_of(node):
    obj = get("gpus", selector=f"tensor-fusion.ai/managed-by={node}")
    return obj["items"] if obj else []


def expect(cond, message):
    if not cond:
        raise Failure(message)


def ensure_cluster_applied():
    kubectl("apply", "-f", SAMPLE_CLUSTER)


def node_gpus_ok(node, model, count):
    items = gpus_of(node)
    if len(items) != count:
        return False
    for g in items:
        s = g.get("status", {})
        if s.get("phase") != "Running" or s.get("gpuModel") != model:
            return False
    return items


def hypervisor_pid(node):
    """The hypervisor process of `node` (its pods run on this host)."""
    out = subprocess.run(["pgrep", "-f", f"tensor-fusion hypervisor --cluster --node-name={node}"],
                         capture_output=True, text=True).stdout.split()
    pids = [int(p) for p in out]
    expect(len(pids) == 1, f"expected one hypervisor process for {node}, found {pids}")
    return pids[0]


# ---- cases --------------------------------------------------------------------------------

def case_registration():
    """Applying TensorFusion's sample cluster: within 10 s both GPU nodes' GPU and GPUNode objects
    exist with the right models and capacities, the pool's totals add up, the CPU node has no
    GPUNode, and `kubectl get` prints real values in every column."""
    t0 = time.monotonic()
    ensure_cluster_applied()
    g0 = wait_until(10, "tf-gpu-0's 2 H100 GPUs Running", lambda: node_gpus_ok("tf-gpu-0", "H100", 2))
    g1 = wait_until(max(1, 10 - (time.monotonic() - t0)), "tf-gpu-1's L4 GPU Running",
                    lambda: node_gpus_ok("tf-gpu-1", "L4", 1))
    for g, (tflops, vram) in [(g, H100) for g in g0] + [(g, L4) for g in g1]:
        cap = g["status"]["capacity"]
        expect(abs(quantity(cap["tflops"]) - tflops) < 0.01, f"{g['metadata']['name']} tflops {cap['tflops']}, want {tflops}")
        expect(quantity(cap["vram"]) == vram, f"{g['metadata']['name']} vram {cap['vram']}, want {vram}")
        expect(g["metadata"]["name"] == g["status"]["uuid"].lower(), "GPU name is the lower-cased UUID")
        expect(g["status"]["nodeSelector"] == {"kubernetes.io/hostname": g["metadata"]["labels"]["tensor-fusion.ai/managed-by"]},
               "nodeSelector names the node")
        owners = g["metadata"].get("ownerReferences", [])
        expect(any(o["kind"] == "GPUNode" and o.get("controller") for o in owners), "GPU owned by its GPUNode")
    for node in ("tf-gpu-0", "tf-gpu-1"):
        gn = wait_until(10, f"GPUNode {node} Running", lambda: (get("gpunode", node) or {}).get("status", {}).get("phase") == "Running" and get("gpunode", node))
        expect(gn["metadata"]["labels"].get("tensor-fusion.ai/managed-by") == POOL, f"GPUNode {node} in pool {POOL}")
    expect(get("gpunode", "tf-cpu-0") is None, "the CPU-only node has no GPUNode")

    want_tflops = 2 * H100[0] + L4[0]
    want_vram = 2 * H100[1] + L4[1]

    def pool_totals():
        s = (get("gpupool", POOL) or {}).get("status", {})
        return (s.get("totalGPUs") == 3 and s.get("totalNodes") == 2 and s.get("readyNodes") == 2 and
                abs(quantity(s.get("totalTFlops", "0")) - want_tflops) < 0.01 and
                quantity(s.get("totalVRAM", "0")) == want_vram and
                abs(quantity(s.get("virtualTFlops", "0")) - want_tflops * 5) < 0.05 and
                s.get("phase") == "Running") and s
    s = wait_until(15, "pool totals add up (3 GPUs, 2 nodes, TFLOPS, VRAM, 5x virtual TFLOPS)", pool_totals)
    cl = wait_until(15, "cluster status sums its pool", lambda: (get("tensorfusioncluster", CLUSTER) or {}).get("status", {}).get("totalGPUs") == 3)
    # The one-time discovery Job of each GPU node labels it with its GPUs' facts.
    def labelled(node, count, model):
        labels = get("node", node)["metadata"]["labels"]
        return (labels.get("tensor-fusion.ai/gpu-count") == count and labels.get("tensor-fusion.ai/gpu-model") == model
                and labels.get("tensor-fusion.ai/hardware-vendor") == "NVIDIA")
    wait_until(120, "tf-gpu-0 labelled 2 x H100 by its discovery Job", lambda: labelled("tf-gpu-0", "2", "H100"))
    wait_until(60, "tf-gpu-1 labelled 1 x L4 by its discovery Job", lambda: labelled("tf-gpu-1", "1", "L4"))
    expect(get("node", "tf-gpu-0")["metadata"]["labels"].get("tensor-fusion.ai/gpu-vram") == "80Gi", "tf-gpu-0 gpu-vram 80Gi")
    expect("tensor-fusion.ai/gpu-count" not in get("node", "tf-cpu-0")["metadata"]["labels"], "the CPU node is not labelled")
    expect(get("job", "tensor-fusion-discovery-tf-cpu-0", ns=NS) is None, "no discovery Job on the CPU node")
    out = kubectl("get", "gpus,gpunodes,gpupools").stdout
    print(out)
    for header in ("GPU MODEL", "TOTAL TFLOPS", "TOTAL VRAM", "DEVICE UUID", "GPU COUNT", "TOTAL GPU"):
        expect(header in out, f"`kubectl get` shows the {header} column")
    for line in out.splitlines():
        if line.startswith("gpu.tensor-fusion.ai/") or line.startswith("gpunode.tensor-fusion.ai/"):
            expect("<none>" not in line, f"no empty column: {line}")


def case_hypervisor_loss():
    """A node's hypervisor that stops answering (SIGSTOP) has its GPUs Unknown within 30 s;
    killed and restarted by the kubelet, they come back Running. The other node is untouched."""
    ensure_cluster_applied()
    wait_until(30, "all GPUs Running", lambda: node_gpus_ok("tf-gpu-1", "L4", 1) and node_gpus_ok("tf-gpu-0", "H100", 2))
    pid = hypervisor_pid("tf-gpu-1")
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(30, "tf-gpu-1's GPU Unknown", lambda: all(g["status"]["phase"] == "Unknown" for g in gpus_of("tf-gpu-1")))
        gn = get("gpunode", "tf-gpu-1")
        expect(gn["status"]["phase"] == "Unknown", "GPUNode tf-gpu-1 Unknown")
        expect(all(g["status"]["phase"] == "Running" for g in gpus_of("tf-gpu-0")), "tf-gpu-0's GPUs stay Running")
        events = kubectl("get", "events", "-A", "--field-selector", "reason=HypervisorLost", "-o", "json").stdout
        expect("tf-gpu-1" in events, "a HypervisorLost Event names the node")
    finally:
        os.kill(pid, signal.SIGKILL)  # delivered even while stopped; the kubelet restarts the container
    wait_until(60, "tf-gpu-1's GPU Running again after the restart", lambda: node_gpus_ok("tf-gpu-1", "L4", 1))
    wait_until(30, "GPUNode tf-gpu-1 Running again", lambda: get("gpunode", "tf-gpu-1")["status"]["phase"] == "Running")


def case_gpu_removed():
    """A soft GPU removed from a node's configuration: after the hypervisor restarts, that GPU is
    marked (Unknown, gpu-missing-since) and then removed; the node's other GPU is untouched."""
    ensure_cluster_applied()
    before = wait_until(30, "tf-gpu-0's 2 GPUs Running", lambda: node_gpus_ok("tf-gpu-0", "H100", 2))
    by_index = {g["status"]["index"]: g for g in before}
    keep, gone = by_index[0], by_index[1]
    conf = os.path.join(CLUSTER_DIR, "nodes", "tf-gpu-0", "etc-tf", "softgpu.json")
    original = open(conf).read()
    with open(conf, "w") as f:
        json.dump({"node": "tf-gpu-0", "devices": [{"model": "H100", "count": 1}]}, f)
    try:
        os.kill(hypervisor_pid("tf-gpu-0"), signal.SIGKILL)
        marked = lambda: (lambda g: g and "tensor-fusion.ai/gpu-missing-since" in g["metadata"].get("annotations", {})
                          and g["status"]["phase"] == "Unknown")(get("gpu", gone["metadata"]["name"]))
        wait_until(60, "the removed GPU marked Unknown with gpu-missing-since", marked)
        wait_until(60, "the removed GPU deleted", lambda: get("gpu", gone["metadata"]["name"]) is None)
        after = get("gpu", keep["metadata"]["name"])
        expect(after is not None and after["metadata"]["uid"] == keep["metadata"]["uid"], "the other GPU is the same object")
        expect(after["status"]["phase"] == "Running", "the other GPU stays Running")
        wait_until(20, "GPUNode tf-gpu-0 counts 1 GPU", lambda: get("gpunode", "tf-gpu-0")["status"].get("totalGPUs") == 1)
    finally:
        with open(conf, "w") as f:
            f.write(original)
        os.kill(hypervisor_pid("tf-gpu-0"), signal.SIGKILL)
    wait_until(60, "both GPUs back", lambda: node_gpus_ok("tf-gpu-0", "H100", 2))


def lease_holder():
    lease = get("lease", "tensor-fusion-controller", ns=NS)
    return lease and lease["spec"].get("holderIdentity")


def case_leader_failover():
    """Killing the leading controller: the standby leads within the lease duration (15 s, plus
    the retry period) and its first pass writes nothing: settled objects keep their versions."""
    ensure_cluster_applied()
    wait_until(30, "pool settled", lambda: (get("gpupool", POOL) or {}).get("status", {}).get("readyNodes") == 2)
    holder = wait_until(30, "a leader", lease_holder)
    pods = [p["metadata"]["name"] for p in get("pods", selector="app.kubernetes.io/name=tensor-fusion-controller", ns=NS)["items"]]
    holder_pod = holder.rsplit("_", 1)[0]
    expect(holder_pod in pods, f"the leader {holder} is one of the controller pods {pods}")
    time.sleep(2)
    versions = {k: get(*k)["metadata"]["resourceVersion"] for k in
                [("gpupool", POOL), ("tensorfusioncluster", CLUSTER)]}
    gpunodes = {n["metadata"]["name"]: n["metadata"]["generation"] for n in get("gpunodes")["items"]}
    pid = int(subprocess.run(["pgrep", "-f", f"tensor-fusion controller.*--identity={holder_pod}"],
                             capture_output=True, text=True).stdout.split()[0])
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    new = wait_until(25, "the standby leads", lambda: (lambda h: h if h and h != holder else None)(lease_holder()))
    took = time.monotonic() - t0
    expect(took <= 15 + 3 + 2, f"takeover took {took:.1f}s, lease is 15s")
    time.sleep(3)  # the new leader's first pass
    for k, rv in versions.items():
        now = get(*k)["metadata"]["resourceVersion"]
        expect(now == rv, f"{k[0]} {k[1]} was rewritten by the new leader (resourceVersion {rv} -> {now})")
    expect({n["metadata"]["name"]: n["metadata"]["generation"] for n in get("gpunodes")["items"]} == gpunodes,
           "GPUNodes unchanged (no duplicate, no spec write)")
    expect(len(get("gpus")["items"]) == 3, "still exactly 3 GPU objects")
    wait_until(60, "controller replicas back to 2 ready", lambda: get("deployment", "tensor-fusion-controller", ns=NS)["status"].get("readyReplicas") == 2)


def case_manifests():
    """TensorFusion's example manifests (cluster, pool, workload profile, quota and the rest)
    apply unchanged; a malformed one is refused with the field named."""
    samples = os.path.join(ROOT, "deploy", "samples")
    # The namespaces the samples live in (as a user would have them).
    for f in sorted(os.listdir(samples)):
        for ns in re.findall(r"^\s+namespace:\s*(\S+)", open(os.path.join(samples, f)).read(), re.M):
            kubectl("create", "namespace", ns, check=False)
    for f in sorted(os.listdir(samples)):
        p = kubectl("apply", "--dry-run=server", "-f", os.path.join(samples, f), check=False)
        expect(p.returncode == 0, f"{f} applies: {p.stderr.strip()}")
    bad = {
        "spec.gpuCount": ("apiVersion: tensor-fusion.ai/v1\nkind: WorkloadProfile\nmetadata: {name: bad, namespace: default}\n"
                          "spec: {gpuCount: 500, resources: {requests: {tflops: '1', vram: 1Gi}, limits: {tflops: '1', vram: 1Gi}}}\n"),
        "spec.qos": ("apiVersion: tensor-fusion.ai/v1\nkind: WorkloadProfile\nmetadata: {name: bad2, namespace: default}\n"
                     "spec: {qos: urgent}\n"),
        "spec.capacityConfig.oversubscription.tflopsOversellRatio": (
            "apiVersion: tensor-fusion.ai/v1\nkind: GPUPool\nmetadata: {name: bad3}\n"
            "spec: {nodeManagerConfig: {}, capacityConfig: {oversubscription: {tflopsOversellRatio: 5}}}\n"),
    }
    for field, manifest in bad.items():
        p = kubectl("apply", "--dry-run=server", "-f", "-", input=manifest, check=False)
        expect(p.returncode != 0, f"a manifest with a bad {field} is refused")
        expect(field in p.stderr, f"the refusal names {field}: {p.stderr.strip()}")
        print(f"-- refused: {p.stderr.strip()}")


def case_pool_without_nodes():
    """A GPUPool whose selector matches no node says so in a condition and an Event."""
    manifest = ("apiVersion: tensor-fusion.ai/v1\nkind: GPUPool\nmetadata: {name: nowhere}\n"
                "spec:\n  nodeManagerConfig:\n    nodeSelector:\n      nodeSelectorTerms:\n"
                "      - matchExpressions: [{key: no-such-label, operator: Exists}]\n")
    kubectl("apply", "-f", "-", input=manifest)
    try:
        def cond():
            for c in (get("gpupool", "nowhere") or {}).get("status", {}).get("conditions", []):
                if c["type"] == "NodesMatched" and c["status"] == "False" and c["reason"] == "NoMatchingNodes":
                    return c
        wait_until(20, "condition NodesMatched=False NoMatchingNodes", cond)
        wait_until(20, "Event NoMatchingNodes", lambda: "nowhere" in kubectl(
            "get", "events", "-A", "--field-selector", "reason=NoMatchingNodes", "-o", "json").stdout)
        expect(get("gpunodes", selector="tensor-fusion.ai/managed-by=nowhere")["items"] == [], "no GPUNode in it")
    finally:
        kubectl("delete", "gpupool", "nowhere", "--wait=true", "--timeout=30s", check=False)
    expect(get("gpupool", "nowhere") is None, "the pool is deleted (its finalizer released)")


def run_cases(namespace):
    """The command line of an e2e file: `FILE CASE` runs its function `case_CASE`."""
    cases = {name[len("case_"):]: fn for name, fn in namespace.items()
             if name.startswith("case_") and fn.__module__ == namespace["__name__"]}  # not imported ones
    prog = os.path.basename(sys.argv[0])
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        print(f"usage: {prog} {{{'|'.join(cases)}}}", file=sys.stderr)
        sys.exit(2)
    try:
        cases[sys.argv[1]]()
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"PASS: {sys.argv[1]}")


if __name__ == "__main__":
    run_cases(globals())
