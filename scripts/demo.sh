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
# Timing mode: kernels hold the soft GPU for a modelled time (100 ns per thread) instead of
# burning the CPU, so the shares below are the limiter's doing, not the CPU scheduler's.
export TF_SOFTGPU_THREAD_TIME_NS=100 TF_LIMITER_REPORT=1
fail=0
trap '"$tf" down >/dev/null 2>&1 || true' EXIT

echo "== tensor-fusion up"
"$tf" up --region-dir "$TF_VGPU_DIR"

echo "== three workloads, ${secs}s each: training 60% (async launches), inference 30% (synchronises after every launch), batch 10%"
"$tf" run --name training --compute 60% --vram 4GiB -- "$load" "$secs" async 2> "$TF_HOME/training.log" &
a=$!
"$tf" run --name inference --compute 30% --vram 2GiB --qos high -- "$load" "$secs" sync 2> "$TF_HOME/inference.log" &
b=$!
"$tf" run --name batch --compute 10% --vram 1GiB --qos low -- "$load" "$secs" async 2> "$TF_HOME/batch.log" &
c=$!
sleep $(( secs / 2 ))
echo "== tensor-fusion ps (while they run)"
"$tf" ps
echo "== a request that does not fit is refused, with its reason"
if "$tf" run --vram 500GiB -- true; then echo "FAIL: a 500 GiB vGPU was granted"; fail=1; fi
wait $a $b $c || { echo "FAIL: a workload failed"; fail=1; }

echo "== shares each workload got against its limit"
for w in training inference batch; do
  line=$(grep "GPU time" "$TF_HOME/$w.log" || true)
  echo "  $w: ${line#*] }"
  share=$(sed -n 's/.*= \([0-9.]*\)% (limit \([0-9.]*\)%.*/\1 \2/p' <<<"$line")
  if [ -z "$share" ] || ! awk -v s="$share" 'BEGIN { split(s, a, " "); exit !(a[1] <= a[2] + 3 && a[1] >= a[2] - 5) }'; then
    echo "FAIL: $w's share is not within its limit"; fail=1
  fi
done

echo "== kill -9 the hypervisor under a running workload, restart it"
"$tf" run --name survivor --compute 50% --vram 1GiB -- "$load" 3 async 2> "$TF_HOME/survivor.log" &
s=$!
sleep 1
hv=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$TF_HOME/hypervisor.json")
kill -9 "$hv"
"$tf" up --region-dir "$TF_VGPU_DIR"
if "$tf" ps | grep -q survivor; then echo "  the running workload's vGPU is listed again"; else echo "FAIL: survivor not listed after restart"; fail=1; fi
wait $s || { echo "FAIL: the workload did not survive the hypervisor crash"; fail=1; }
echo "  the workload finished: $(grep -o 'GPU time.*' "$TF_HOME/survivor.log")"

if [ -x "$build/examples/saxpy" ]; then
  echo "== an unmodified CUDA program with results checked, in a 2 GiB / 50% vGPU"
  TF_SOFTGPU_THREAD_TIME_NS=0 "$tf" run --compute 50% --vram 2GiB -- "$build/examples/saxpy" || { echo "FAIL: saxpy"; fail=1; }
fi

echo "== tensor-fusion down"
"$tf" down
trap - EXIT
if [ "$fail" = 0 ]; then echo "demo: all checks passed"; else echo "demo: FAILED"; exit 1; fi
