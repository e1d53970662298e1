#!/usr/bin/env python3
"""Remote vGPUs end to end (issue 13 item 4, reference §3.5): a pod on the CPU-only node, in an
image with no GPU library at all, runs CUDA programs through our stub to a worker pod the
controller made on a GPU node, after asking the operator's connection API where it is. And the
connection API's refusals. After the scheduling cases."""
import base64
import json
import os
import urllib.error
import urllib.request

from e2e import *  # noqa: F401,F403
from e2e_node import expect_vgpu_probe, pod_logs, pod_phase  # noqa: F401

REMOTE_NS = "tf-e2e-remote"
CPU_IMAGE = "localhost/tensor-fusion-samples-cpu:dev"


def client_pod(name):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": REMOTE_NS, "labels": {"tensor-fusion.ai/enabled": "true"},
                         "annotations": {"tensor-fusion.ai/is-local-gpu": "false", "tensor-fusion.ai/gpupool": POOL,
                                         "tensor-fusion.ai/vram-limit": "1Gi", "tensor-fusion.ai/tflops-limit": "10"}},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "nodeSelector": {"kubernetes.io/hostname": "tf-cpu-0"},
                     "containers": [{"name": "app", "image": CPU_IMAGE, "imagePullPolicy": "Never",
                                     # Stays up after the programs, so its connection and worker
                                     # can be looked at (a client that ends releases them).
                                     "command": ["/bin/sh", "-c", "ls /opt; if vgpu_probe && saxpy; then echo E2E-OK; "
                                                 "else echo E2E-FAILED; fi; sleep 600"],
                                     "env": [{"name": "TF_CONNECTION_TIMEOUT_S", "value": "240"}]}]}}


def connection_of(pod):
    for c in pod["spec"]["containers"]:
        for e in c.get("env", []):
            if e["name"] == "TENSOR_FUSION_CONNECTION_NAME":
                return e["value"]
    return None


NETWORK_POLICY = os.path.join(ROOT, "deploy", "examples", "remote-workers-networkpolicy.yaml")


def selects(selector, labels):
    """A LabelSelector (matchLabels, matchExpressions) applied to a pod's labels."""
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        k, op, values = e["key"], e["operator"], e.get("values", [])
        ok = {"Exists": k in labels, "DoesNotExist": k not in labels,
              "In": labels.get(k) in values, "NotIn": labels.get(k) not in values}[op]
        if not ok:
            return False
    return True


def check_network_policy(client, worker):
    """deploy/examples/remote-workers-networkpolicy.yaml, made for this client's workload, is a
    valid NetworkPolicy (the apiserver's dry run) that selects the worker and lets exactly the
    client in on the worker's port, and not another workload's client."""
    workload = client["metadata"]["labels"]["tensor-fusion.ai/workload"]
    manifest = open(NETWORK_POLICY).read().replace(": llm", ": " + workload)
    p = kubectl("create", "--dry-run=server", "-o", "json", "-n", REMOTE_NS, "-f", "-", input=manifest, check=False)
    expect(p.returncode == 0, f"the NetworkPolicy example applies: {p.stderr.strip()}")
    spec = json.loads(p.stdout)["spec"]
    expect(selects(spec["podSelector"], worker["metadata"]["labels"]),
           f"the policy selects the worker pod: {spec['podSelector']} vs {worker['metadata']['labels']}")
    expect(not selects(spec["podSelector"], client["metadata"]["labels"]), "the policy does not select the client")
    rule = spec["ingress"][0]
    expect(selects(rule["from"][0]["podSelector"], client["metadata"]["labels"]),
           f"the client may connect: {rule['from']} vs {client['metadata']['labels']}")
    other = dict(client["metadata"]["labels"], **{"tensor-fusion.ai/workload": workload + "-other"})
    expect(not selects(rule["from"][0]["podSelector"], other), "another workload's client may not")
    ports = [cp["containerPort"] for c in worker["spec"]["containers"] for cp in c.get("ports", [])]
    expect([r["port"] for r in rule["ports"]] == ports, f"the policy opens the worker's port {ports}: {rule['ports']}")


def case_remote_vgpu_pod():
    """The client pod runs on tf-cpu-0 with no GPU library in its image; vgpu_probe sees the
    1 GiB vGPU and saxpy's results are correct, both served by the worker pod on a GPU node.
    Its TensorFusionConnection says where, Running; deleting the pod removes connection and worker."""
    ensure_cluster_applied()
    kubectl("create", "namespace", REMOTE_NS, check=False)
    kubectl("delete", "pod", "remote-app", "-n", REMOTE_NS, "--wait=true", "--timeout=60s", check=False)
    kubectl("create", "-f", "-", input=json.dumps(client_pod("remote-app")))
    try:
        pod = get("pod", "remote-app", ns=REMOTE_NS)
        conn = connection_of(pod)
        expect(conn and conn.startswith("remote-app-tf-vgpu-"), f"the webhook named the connection: {conn}")
        expect(pod["metadata"]["labels"]["tensor-fusion.ai/component"] == "client", "a client pod")
        def finished():
            if pod_phase("remote-app", REMOTE_NS) in ("Succeeded", "Failed"):
                return "the pod ended early"
            out = pod_logs("remote-app", REMOTE_NS)
            return ("ok" if "E2E-OK" in out else "failed") if "E2E-" in out else None
        try:
            outcome = wait_until(240, "the remote programs finished", finished)
        except Failure:
            for what in (["describe", "pod", "remote-app", "-n", REMOTE_NS],
                         ["describe", "pod", conn, "-n", REMOTE_NS],
                         ["get", "tensorfusionconnection", "-n", REMOTE_NS, "-o", "yaml"],
                         ["logs", "remote-app", "-n", REMOTE_NS]):
                print(kubectl(*what, check=False).stdout)
            raise
        logs = pod_logs("remote-app", REMOTE_NS)
        print(logs)
        expect(outcome == "ok", f"the remote programs failed ({outcome}): {logs}")
        expect("softgpu" not in logs, f"no GPU library in the client's image: {logs}")
        expect_vgpu_probe(logs, 2**30)
        expect("saxpy over" in logs and ": correct" in logs, f"saxpy's results are correct: {logs}")
        pod = get("pod", "remote-app", ns=REMOTE_NS)
        expect(pod["spec"]["nodeName"] == "tf-cpu-0", "the client ran on the CPU-only node")

        c = get("tensorfusionconnection", conn, ns=REMOTE_NS)
        expect(c is not None, f"TensorFusionConnection {conn} exists")
        expect(c.get("status", {}).get("phase") == "Running" and c["status"].get("connectionURL", "").startswith("native+"),
               f"the connection is Running with the worker's address: {c.get('status')}")
        worker = get("pod", conn, ns=REMOTE_NS)
        expect(worker is not None, f"its worker pod {conn}")
        wnode = worker["spec"]["nodeName"]
        ids = worker["metadata"]["annotations"].get("tensor-fusion.ai/gpu-ids", "")
        print(f"-- connection {c['status']} ; worker on {wnode} with {ids}")
        check_network_policy(pod, worker)
        expect(wnode in ("tf-gpu-0", "tf-gpu-1"), f"the worker runs on a GPU node: {wnode}")
        expect(ids and all(g in {x["metadata"]["name"] for x in gpus_of(wnode)} for g in ids.split(",")),
               f"the worker holds a GPU of its node: {ids}")
        expect(c["spec"] == {"workloadName": pod["metadata"]["labels"]["tensor-fusion.ai/workload"], "clientPod": "remote-app"},
               f"the connection's spec: {c['spec']}")
        expect(c["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"], "owned by the client pod")
        expect(worker["metadata"]["ownerReferences"][0]["uid"] == c["metadata"]["uid"], "the worker is owned by it")
    finally:
        kubectl("delete", "pod", "remote-app", "-n", REMOTE_NS, "--wait=false", check=False)
    if conn:
        wait_until(120, "connection and worker gone with the client",
                   lambda: get("tensorfusionconnection", conn, ns=REMOTE_NS) is None and get("pod", conn, ns=REMOTE_NS) is None)


def api_get(query, token=None):
    ip = get("service", "tensor-fusion-controller", ns=NS)["spec"]["clusterIP"]
    req = urllib.request.Request(f"http://{ip}:8080/api/connection?{query}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except OSError as e:
        raise Failure(f"the connection API: {e}")


def service_account_token(ns):
    """The default service account's token (Kubernetes 1.20 keeps it in a Secret)."""
    sa = wait_until(60, f"the default ServiceAccount of {ns} has its token", lambda: (get("serviceaccount", "default", ns=ns) or {}).get("secrets"))
    secret = get("secret", sa[0]["name"], ns=ns)
    return base64.b64decode(secret["data"]["token"]).decode()


def case_connection_api_refusals():
    """Without a token: 401. A token of another namespace's service account: 403. A forged
    token: 401. A malformed query: 400. A good token for a connection that never becomes
    ready: 504 when the time asked for is up, saying where it stands."""
    kubectl("create", "namespace", REMOTE_NS, check=False)
    kubectl("create", "namespace", "tf-e2e-other", check=False)
    q = f"name=nothing-tf-vgpu-x&namespace={REMOTE_NS}&timeout=1"
    status, body = wait_until(60, "the connection API answers", lambda: api_get(q))
    expect(status == 401 and "token" in body.get("error", ""), f"no token: {status} {body}")
    status, body = api_get(q, "forged.token.value")
    expect(status == 401, f"a forged token: {status} {body}")
    status, body = api_get(q, service_account_token("tf-e2e-other"))
    expect(status == 403 and "tf-e2e-other" in body.get("error", ""), f"another namespace's token: {status} {body}")
    status, body = api_get("name=Bad_Name&namespace=x", service_account_token(REMOTE_NS))
    expect(status == 400, f"a malformed query: {status} {body}")
    status, body = api_get(q, service_account_token(REMOTE_NS))
    expect(status == 504 and "no TensorFusionConnection" in body.get("error", ""), f"not ready in time: {status} {body}")


if __name__ == "__main__":
    run_cases(globals())
