#!/usr/bin/env python3
"""End-to-end tests of the admission webhook on the local cluster (after e2e.py's
registration case: the sample pool exists and tf-gpu-0's two GPUs are in it). Each case is one
CTest test: `e2e_webhook.py CASE`. Until the scheduler lands, local pods (schedulerName
tensor-fusion-scheduler) stay Pending: the cases check the created objects, not that they run."""
import base64
import json
import re
import urllib.request

from e2e import *  # noqa: F401,F403 (kubectl, get, wait_until, expect, Failure, NS, POOL, ...)

TEST_NS = "tf-webhook-e2e"
WEBHOOK = "tensor-fusion-webhook"


def pod_manifest(name, annotations, labelled=True, containers=("app",), ns=TEST_NS):
    meta = {"name": name, "namespace": ns, "annotations": annotations}
    if labelled:
        meta["labels"] = {"tensor-fusion.ai/enabled": "true"}
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        # sleep as PID 1 ignores SIGTERM: a short grace so deleted pods free their GPUs quickly.
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": c, "image": "localhost/tensor-fusion:dev", "command": ["sleep", "3600"]}
                                for c in containers]}})


def ensure_namespace():
    if get("namespace", TEST_NS) is None:
        kubectl("create", "namespace", TEST_NS)


def webhook_answers():
    """A server-side dry run of a labelled pod comes back patched: the webhook is reachable."""
    p = kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", check=False,
                input=pod_manifest("probe", {"tensor-fusion.ai/vram-limit": "1Gi", "tensor-fusion.ai/tflops-limit": "1"}))
    if p.returncode != 0:
        raise Failure(p.stderr.strip())
    return json.loads(p.stdout)["spec"].get("schedulerName") == "tensor-fusion-scheduler"


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def admission_views():
    """Admissions answered from the webhook's informer cache and from apiserver reads, summed
    over the controller replicas (their /metrics), with the replicas' names."""
    total = {"cache": 0.0, "apiserver": 0.0}
    pods = get("pods", selector="app.kubernetes.io/name=tensor-fusion-controller", ns=NS)["items"]
    for p in pods:
        ip = p["status"].get("podIP")
        if not ip:
            raise Failure(f"controller pod {p['metadata']['name']} has no IP yet")
        try:
            with urllib.request.urlopen(f"http://{ip}:8080/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError as e:
            raise Failure(f"metrics of {p['metadata']['name']}: {e}")
        for m in re.finditer(r'^tensor_fusion_webhook_admissions_total\{view="(\w+)"\} (\S+)$', text, re.M):
            total[m.group(1)] += float(m.group(2))
    return total, sorted(p["metadata"]["name"] for p in pods)


# ---- cases --------------------------------------------------------------------------------

def case_webhook_registered():
    """The controller registered itself: a MutatingWebhookConfiguration with our CA in caBundle
    (a PEM CA), CREATE pods only, the enabled label as objectSelector, failurePolicy Fail; the
    Secret holds the CA and the serving certificate; the webhook answers through the apiserver."""
    cfg = wait_until(60, "MutatingWebhookConfiguration made by the controller",
                     lambda: get("mutatingwebhookconfiguration", WEBHOOK))
    hook = cfg["webhooks"][0]
    bundle = base64.b64decode(hook["clientConfig"]["caBundle"]).decode()
    expect(bundle.startswith("-----BEGIN CERTIFICATE-----"), f"caBundle is a PEM certificate: {bundle[:40]!r}")
    expect(hook["failurePolicy"] == "Fail", f"failurePolicy Fail: {hook['failurePolicy']}")
    expect(hook["objectSelector"] == {"matchLabels": {"tensor-fusion.ai/enabled": "true"}}, f"objectSelector: {hook['objectSelector']}")
    expect(hook["rules"][0]["operations"] == ["CREATE"] and hook["rules"][0]["resources"] == ["pods"], f"rules: {hook['rules']}")
    secret = get("secret", "tensor-fusion-webhook-certs", ns=NS)
    expect(secret is not None, "Secret tensor-fusion-webhook-certs exists")
    ca = base64.b64decode(secret["data"]["ca.crt"]).decode()
    expect(ca in bundle, "the Secret's CA is in the caBundle")
    ensure_namespace()
    wait_until(60, "the webhook patches a dry-run pod through the apiserver", webhook_answers)


DENIALS = [
    # (annotations, containers, the annotation the refusal must name, a phrase of the reason)
    ({"tensor-fusion.ai/vram-limit": "lots"}, ("app",), "tensor-fusion.ai/vram-limit", "is not a quantity"),
    ({"tensor-fusion.ai/vram-request": "2Gi", "tensor-fusion.ai/vram-limit": "1Gi"}, ("app",),
     "tensor-fusion.ai/vram-request", "is above tensor-fusion.ai/vram-limit"),
    ({"tensor-fusion.ai/tflops-limit": "10", "tensor-fusion.ai/compute-percent-limit": "30"}, ("app",),
     "tensor-fusion.ai/compute-percent-limit", "given together with"),
    ({"tensor-fusion.ai/gpupool": "no-such-pool", "tensor-fusion.ai/vram-limit": "1Gi"}, ("app",),
     "tensor-fusion.ai/gpupool", "not found"),
    ({"tensor-fusion.ai/workload-profile": "no-such-profile"}, ("app",), "tensor-fusion.ai/workload-profile", "not found"),
    ({"tensor-fusion.ai/gpu-count": "129", "tensor-fusion.ai/vram-limit": "1Gi"}, ("app",), "tensor-fusion.ai/gpu-count", "1..128"),
    ({"tensor-fusion.ai/dedicated-gpu": "true"}, ("app",), "tensor-fusion.ai/dedicated-gpu", "needs tensor-fusion.ai/gpu-model"),
    ({"tensor-fusion.ai/gang-min-members": "1", "tensor-fusion.ai/vram-limit": "1Gi"}, ("app",),
     "tensor-fusion.ai/gang-min-members", "not a gang"),
    ({"tensor-fusion.ai/qos": "high"}, ("app",), "tensor-fusion.ai/tflops-request", "no GPU resources requested"),
    ({"tensor-fusion.ai/vram-limit": "1Gi"}, ("app", "side"), "tensor-fusion.ai/inject-container", "more than one container"),
    ({"tensor-fusion.ai/vram-limit": "1Gi", "tensor-fusion.ai/isolation": "hard", "tensor-fusion.ai/vendor": "Ascend"}, ("app",),
     "tensor-fusion.ai/isolation", "cannot use"),
    ({"tensor-fusion.ai/vram-limit": "1Gi", "tensor-fusion.ai/isolation": "partitioned"}, ("app",),
     "tensor-fusion.ai/isolation", "not supported"),
    ({"tensor-fusion.ai/vram-limit": "1Gi", "tensor-fusion.ai/eviction-protection": "ten minutes"}, ("app",),
     "tensor-fusion.ai/eviction-protection", "Go duration"),
]


def case_webhook_denials():
    """Each bad annotation (one kubectl apply per rule) is refused at admission with the
    annotation named; nothing is created."""
    ensure_namespace()
    per_node = {}
    for g in get("gpus", selector=f"tensor-fusion.ai/gpupool={POOL}")["items"]:
        node = g["metadata"]["labels"].get("tensor-fusion.ai/managed-by")
        per_node[node] = per_node.get(node, 0) + 1
    most = max(per_node.values(), default=0)
    expect(most > 0, f"pool {POOL} has GPUs (registered by the earlier cases)")
    too_many = ({"tensor-fusion.ai/gpu-count": str(most + 1), "tensor-fusion.ai/vram-limit": "1Gi"}, ("app",),
                "tensor-fusion.ai/gpu-count", f"has more than {most}")
    for i, (annotations, containers, key, why) in enumerate(DENIALS + [too_many]):
        p = kubectl("apply", "-f", "-", check=False, input=pod_manifest(f"bad-{i}", annotations, containers=containers))
        expect(p.returncode != 0, f"rule {i} ({key}: {why}) refused, but kubectl said: {p.stdout.strip()}")
        expect("denied the request" in p.stderr and key + ":" in p.stderr and why in p.stderr,
               f"rule {i}: the refusal names {key} ({why}): {p.stderr.strip()}")
        print(f"-- refused: {p.stderr.strip()}", flush=True)
    left = get("pods", ns=TEST_NS)["items"]
    expect(all(not p["metadata"]["name"].startswith("bad-") for p in left), "no denied pod exists")


def case_webhook_patch():
    """A good local pod is created patched: normalised annotations, labels, schedulerName, the
    init container with our limiter, the environment, the region mount, its TensorFusionWorkload;
    a high-QoS pod gets its priority class and value; a pod without the label is untouched."""
    ensure_namespace()
    try:
        before, replicas = wait_until(60, "the controllers' metrics", admission_views)
        kubectl("apply", "-f", "-", input=pod_manifest("good", {"tensor-fusion.ai/vram-limit": "1024Mi",
                                                                "tensor-fusion.ai/compute-percent-limit": "30"}))
        after, replicas_after = wait_until(60, "the controllers' metrics", admission_views)
        # The admission read the pool, quotas and GPUs from the webhook's informers, not the apiserver.
        expect(replicas_after == replicas, f"the same controller replicas throughout: {replicas} then {replicas_after}")
        expect(after["cache"] > before["cache"] and after["apiserver"] == before["apiserver"],
               f"the admission was answered from the cache: before {before}, after {after}")
        pod = get("pod", "good", ns=TEST_NS)
        meta, spec = pod["metadata"], pod["spec"]
        a = meta["annotations"]
        expect(a.get("tensor-fusion.ai/vram-limit") == "1Gi" and a.get("tensor-fusion.ai/vram-request") == "1Gi",
               f"vram normalised, request defaulted to the limit: {a}")
        expect(a.get("tensor-fusion.ai/compute-percent-request") == "30", f"compute request defaulted: {a}")
        expect(a.get("tensor-fusion.ai/gpupool") == POOL and a.get("tensor-fusion.ai/qos") == "high"
               and a.get("tensor-fusion.ai/is-local-gpu") == "true" and a.get("tensor-fusion.ai/isolation") == "soft"
               and a.get("tensor-fusion.ai/gpu-count") == "1", f"defaults from the default pool: {a}")
        labels = meta["labels"]
        expect(labels.get("tensor-fusion.ai/component") == "worker" and labels.get("tensor-fusion.ai/workload") == "good"
               and labels.get("tensor-fusion.ai/gpupool") == POOL, f"labels: {labels}")
        expect(spec.get("schedulerName") == "tensor-fusion-scheduler", f"schedulerName: {spec.get('schedulerName')}")
        expect(spec.get("priorityClassName") == "tensor-fusion-high" and spec.get("priority") == 10000,
               f"priority class of QoS high: {spec.get('priorityClassName')} {spec.get('priority')}")
        init = spec["initContainers"][0]
        expect(init["name"] == "tensor-fusion-inject" and "libtensor-fusion-limiter.so" in init["command"][2],
               f"init container: {init}")
        client = get("gpupool", POOL)["spec"].get("componentConfig", {}).get("client", {})
        want = client.get("embeddedModeImage") or client.get("image") or "localhost/tensor-fusion:dev"
        expect(init["image"] == want, f"init image {init['image']}: the pool's client image or the controller's ({want})")
        env = env_of(spec["containers"][0])
        expect(env.get("LD_PRELOAD") == "/tensor-fusion/libtensor-fusion-limiter.so", f"LD_PRELOAD: {env}")
        expect(env.get("TF_VGPU_REGION") == "/run/tensor-fusion/vgpu/region", f"TF_VGPU_REGION: {env}")
        expect(env.get("POD_NAME") == {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}, f"POD_NAME: {env}")
        mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
        expect(mounts.get("tensor-fusion-run", {}).get("subPathExpr") == "$(POD_NAMESPACE)/$(POD_UID)",
               f"region mount: {mounts}")
        wl = get("tensorfusionworkload", "good", ns=TEST_NS)
        expect(wl is not None, "TensorFusionWorkload 'good' exists")
        expect(wl["spec"]["poolName"] == POOL and wl["spec"]["resources"]["limits"]["vram"] == "1Gi",
               f"workload spec: {wl['spec']}")

        kubectl("apply", "-f", "-", input=pod_manifest("plain", {"tensor-fusion.ai/vram-limit": "junk"}, labelled=False))
        plain = get("pod", "plain", ns=TEST_NS)
        expect(plain["spec"].get("schedulerName") == "default-scheduler" and "initContainers" not in plain["spec"]
               and plain["metadata"]["annotations"].get("tensor-fusion.ai/vram-limit") == "junk"
               and not any(k.startswith("tensor-fusion.ai/") for k in plain["metadata"].get("labels", {})),
               f"a pod without the label is untouched: {plain['spec'].get('schedulerName')} {plain['metadata']}")
    finally:
        kubectl("delete", "pod", "good", "plain", "-n", TEST_NS, "--wait=false", check=False)
        kubectl("delete", "tensorfusionworkload", "good", "-n", TEST_NS, "--wait=false", check=False)


REMOTE_POOL = "webhook-e2e-remote"


def case_webhook_remote_runs():
    """A remote pod keeps the default scheduler, so it runs now: its init container (the
    pool's remoteModeImage, our image here; the sample pool names TensorFusion's own client
    image, which has another layout) copied our stub into /tensor-fusion/remote, and the app
    sees it on LD_LIBRARY_PATH (the paths of images/tensor-fusion.sh, on a real node)."""
    ensure_namespace()
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "tensor-fusion.ai/v1", "kind": "GPUPool", "metadata": {"name": REMOTE_POOL},
        "spec": {"defaultUsingLocalGPU": False,
                 "nodeManagerConfig": {"nodeSelector": {"nodeSelectorTerms": [
                     {"matchExpressions": [{"key": "no-such-label", "operator": "Exists"}]}]}},
                 "componentConfig": {"client": {"remoteModeImage": "localhost/tensor-fusion:dev"}}}}))
    manifest = json.loads(pod_manifest("remote", {"tensor-fusion.ai/vram-limit": "1Gi", "tensor-fusion.ai/tflops-limit": "1",
                                                  "tensor-fusion.ai/gpupool": REMOTE_POOL}))
    manifest["spec"]["containers"][0]["command"] = [
        "/bin/sh", "-c", "ls /tensor-fusion/remote && echo LD_LIBRARY_PATH=$LD_LIBRARY_PATH && sleep 3600"]
    try:
        kubectl("apply", "-f", "-", input=json.dumps(manifest))
        pod = get("pod", "remote", ns=TEST_NS)
        expect(pod["metadata"]["labels"].get("tensor-fusion.ai/component") == "client", "component client (the pool's default)")
        expect(pod["spec"]["initContainers"][0]["image"] == "localhost/tensor-fusion:dev",
               f"the pool's client image: {pod['spec']['initContainers'][0]['image']}")
        wait_until(90, "the remote pod Running", lambda: get("pod", "remote", ns=TEST_NS)["status"].get("phase") == "Running")

        def output():
            out = kubectl("logs", "remote", "-n", TEST_NS, "-c", "app", check=False).stdout
            return out if "LD_LIBRARY_PATH=" in out else None
        logs = wait_until(30, "the app's output", output)
        expect("libcuda.so.1" in logs and "libnvidia-ml.so.1" in logs, f"the stub was placed: {logs}")
        expect("LD_LIBRARY_PATH=/tensor-fusion/remote" in logs, f"the app's search path: {logs}")
    finally:
        kubectl("delete", "pod", "remote", "-n", TEST_NS, "--wait=false", check=False)
        kubectl("delete", "tensorfusionworkload", "remote", "-n", TEST_NS, "--wait=false", check=False)
        kubectl("delete", "gpupool", REMOTE_POOL, "--wait=false", check=False)


if __name__ == "__main__":
    run_cases(globals())
