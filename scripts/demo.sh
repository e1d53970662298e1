#!/usr/bin/env bash
# The standalone demo: a hypervisor for this machine (the soft GPU where there is no GPU), three
# CUDA programs sharing one GPU with different limits, the `ps` table, a hypervisor crash and
# restart under a running workload, and the shares each program got against its limit.
#
#   scripts/demo.sh [build dir]        TF_DEMO_SECONDS (default 10) sets the workload length
set -euo pipefail
build=$(cd "${1:-$(dirname "$0")/../build/default}" && pwd)
tf="$build/bin/tensor-fusion"
load="$build/tests/limiter/compute_load"
secs=${TF_DEMO_SECONDS:-10}
export TF_HOME=${TF_HOME:-$(mktemp -d /tmp/tf-demo-XXXXXX)}
export TF_VGPU_DIR=$TF_HOME/regions TF_SOFTGPU_STATE_DIR=$TF_HOME/softgpu
mkdir -p "$TF_VGPU_DIR" "$TF_SOFTGPU_STATE_DIR"
# Timing mode for the compute workloads: kernels hold the soft GPU for a modelled time (100 ns
# per thread) instead of burning the CPU, so the shares below are the limiter's doing, not the
# CPU scheduler's. (Given to the workloads only: workers the hypervisor starts run real kernels.)
timed="env TF_SOFTGPU_THREAD_TIME_NS=100"
export TF_LIMITER_REPORT=1
fail=0
# waitFor NAME PID: waits for one workload and fails the demo, naming it, unless it exited 0
# (`wait a b c` would return only the last one's status).
waitFor() {
  local rc=0
  wait "$2" || rc=$?
  if [ "$rc" != 0 ]; then echo "FAIL: workload $1 exited with status $rc"; fail=1; fi
  return "$rc"
}
trap '"$tf" down >/dev/null 2>&1 || true' EXIT

echo "== tensor-fusion up"
"$tf" up --region-dir "$TF_VGPU_DIR"

echo "== three workloads, ${secs}s each: training 60% (async launches), inference 30% (synchronises after every launch), batch 10%"
"$tf" run --name training --compute 60% --vram 4GiB -- $timed "$load" async "$secs" > "$TF_HOME/training.out" 2> "$TF_HOME/training.log" &
a=$!
"$tf" run --name inference --compute 30% --vram 2GiB --qos high -- $timed "$load" sync "$secs" > "$TF_HOME/inference.out" 2> "$TF_HOME/inference.log" &
b=$!
"$tf" run --name batch --compute 10% --vram 1GiB --qos low -- $timed "$load" async "$secs" > "$TF_HOME/batch.out" 2> "$TF_HOME/batch.log" &
c=$!
sleep $(( secs / 2 ))
echo "== tensor-fusion ps (while they run)"
"$tf" ps
echo "== a request that does not fit is refused, with its reason"
if refusal=$("$tf" run --vram 500GiB -- true 2>&1); then
  echo "FAIL: a 500 GiB vGPU was granted"; fail=1
elif ! grep -q "the vGPU was refused: ." <<<"$refusal"; then
  echo "FAIL: the refusal gave no reason: $refusal"; fail=1
else
  echo "  $refusal"
fi
waitFor training $a || true
waitFor inference $b || true
waitFor batch $c || true

# The share each workload measured itself (the soft GPU's account of its GPU time over its own
# loop), printed only when the workload succeeded; not the limiter's report of itself.
echo "== shares each workload got against its limit"
for w in training:60 inference:30 batch:10; do
  name=${w%:*} limit=${w#*:}
  sed "s/^/    /" "$TF_HOME/$name.log"
  line=$(grep "compute_load: GPU time" "$TF_HOME/$name.out" || true)
  echo "  $name: ${line#compute_load: } (limit $limit%)"
  share=$(sed -n 's/.*= \([0-9.]*\)%$/\1/p' <<<"$line")
  if [ -z "$share" ]; then
    echo "FAIL: $name printed no share (it failed, or did not run on the soft GPU)"; fail=1
  elif ! awk -v s="$share" -v l="$limit" 'BEGIN { exit !(s <= l + 3 && s >= l - 5) }'; then
    echo "FAIL: $name's share $share% is not within its limit $limit% (-5/+3 points)"; fail=1
  fi
done

echo "== kill -9 the hypervisor under a running workload, restart it"
"$tf" run --name survivor --compute 50% --vram 1GiB -- $timed "$load" async 3 > "$TF_HOME/survivor.out" 2> "$TF_HOME/survivor.log" &
s=$!
sleep 1
hv=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$TF_HOME/hypervisor.json")
kill -9 "$hv"
"$tf" up --region-dir "$TF_VGPU_DIR"
if "$tf" ps | grep -q survivor; then echo "  the running workload's vGPU is listed again"; else echo "FAIL: survivor not listed after restart"; fail=1; fi
if waitFor survivor $s; then
  echo "  the workload finished: $(grep 'GPU time' "$TF_HOME/survivor.out")"
else
  echo "FAIL: the workload did not survive the hypervisor crash"; cat "$TF_HOME/survivor.log"
fi

echo "== hard isolation: the program talks only to a limited worker (shared memory), never to the driver"
"$tf" run --isolation hard --vram 256MiB --compute 50% -- "$build/tests/limiter/limiter_memory" > "$TF_HOME/hard.log" 2>&1 \
  && echo "  inside a 256 MiB hard vGPU: $(tail -1 "$TF_HOME/hard.log")" \
  || { echo "FAIL: the 256 MiB contract did not hold through the worker"; cat "$TF_HOME/hard.log"; fail=1; }

echo "== kill -9 a worker under its client: the client gets an error, not a hang"
"$tf" run --name fragile --isolation hard --vram 1GiB -- "$load" async 20 2> "$TF_HOME/fragile.log" &
f=$!
for _ in $(seq 50); do grep -q '"fragile"' "$TF_HOME/state.json" 2>/dev/null && break; sleep 0.1; done
sleep 1
wpid=$(python3 -c "import json,sys; v=[v for v in json.load(open('$TF_HOME/state.json'))['vgpus'] if v['id']=='fragile'][0]; print(v['worker']['pid'])")
start=$(date +%s)
kill -9 "$wpid"
if wait $f; then echo "FAIL: the client did not notice its worker die"; fail=1; fi
took=$(( $(date +%s) - start ))
echo "  the client failed ${took}s after its worker was killed"
[ "$took" -le 5 ] || { echo "FAIL: the client took ${took}s to fail"; fail=1; }

echo "== a dead worker is restarted by the hypervisor"
restarted=$(python3 - "$TF_HOME" <<'PY'
import json, os, signal, sys, time, urllib.request
home = sys.argv[1]
addr = json.load(open(home + "/hypervisor.json"))["address"]
def call(method, path, body=None):
    req = urllib.request.Request("http://" + addr + path, method=method,
                                 data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")
v = call("POST", "/api/v1/vgpus", {"name": "restartme", "vramLimit": "1GiB", "isolation": "hard"})
old = v["worker"]["pid"]
os.kill(old, signal.SIGKILL)
for _ in range(50):
    time.sleep(0.1)
    w = call("GET", "/api/v1/vgpus/restartme")["worker"]
    if w["restarts"] >= 1 and w["pid"] not in (0, old):
        break
call("DELETE", "/api/v1/vgpus/restartme")
print("%d restart(s), worker pid %d -> %d, address %s" % (w["restarts"], old, w["pid"], w["address"]))
PY
) || true
echo "  $restarted"
case "$restarted" in 1\ restart*) ;; *) echo "FAIL: the worker was not restarted"; fail=1 ;; esac

echo "== an unmodified CUDA program with results checked, in a 2 GiB / 50% vGPU"
if [ ! -x "$build/examples/saxpy" ]; then
  # Not skipped in silence: the demo shows a user's program, and a build without it is broken.
  echo "FAIL: $build/examples/saxpy is not built (build the 'examples' target)"; fail=1
else
  "$tf" run --compute 50% --vram 2GiB -- "$build/examples/saxpy" || { echo "FAIL: saxpy"; fail=1; }
  echo "== the same program with remote isolation: the client stub over TCP to a limited worker"
  "$tf" run --isolation remote --compute 50% --vram 2GiB -- "$build/examples/saxpy" \
    || { echo "FAIL: saxpy over TCP"; fail=1; }
fi

echo "== tensor-fusion down"
"$tf" down
trap - EXIT
if [ "$fail" = 0 ]; then echo "demo: all checks passed"; else echo "demo: FAILED"; exit 1; fi
