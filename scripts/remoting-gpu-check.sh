#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the remoting test programs and benchmark against NVIDIA's
# driver (the worker dlopen()s the real libcuda.so.1), and a PyTorch smoke test through the stub
# when torch is installed. Written on a machine without a GPU: not yet run on one.
#
#   scripts/remoting-gpu-check.sh [build-dir]      # default build/default, already built
set -uo pipefail
build=${1:-build/default}
root=$(cd "$(dirname "$0")/.." && pwd)
driver=$(ldconfig -p | awk '/libcuda\.so\.1 /{print $NF; exit}')
if [ -z "$driver" ] || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "no NVIDIA driver or GPU here" >&2
  exit 2
fi
driverdir=$(dirname "$driver")
worker=$build/bin/tensor-fusion-worker
stub=$build/lib/remote
runner=$root/tests/remoting/run_remote.sh
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
fail=0

run() { # name transport extra-ld program...
  local name=$1 transport=$2 extra=$3
  shift 3
  if bash "$runner" "$transport" "$worker" "$driverdir" "$stub" "$state/$name-$transport" "$extra" "$@" \
      >"$state/$name-$transport.log" 2>&1; then
    echo "PASS $name over $transport"
  else
    echo "FAIL $name over $transport (log: $state/$name-$transport.log)"
    tail -5 "$state/$name-$transport.log"
    fail=1
  fi
}

for prog in vector_add kernel_fault pitched_3d streams_events streams_per_thread stream_ordered device_query \
            memory pinned_managed graphs zero_copy; do
  for transport in tcp shm; do
    run "${prog}_static" "$transport" "" "$build/tests/cuda/${prog}_static"
    run "${prog}_shared" "$transport" ":/usr/local/cuda/lib64" "$build/tests/cuda/${prog}_shared"
  done
done
for transport in tcp shm; do
  run errors_driver "$transport" "" "$build/tests/cuda/errors_driver"
  run vmm_driver "$transport" "" "$build/tests/cuda/vmm_driver"
done

echo
echo "== benchmark (the 'soft GPU local' lines are NVIDIA's driver here)"
"$build/bench/remoting/bench_remoting" "$worker" "$driver" "$stub/libcuda.so.1" || fail=1

if python3 -c "import torch" 2>/dev/null; then
  echo
  echo "== PyTorch smoke test: native, then through the stub over shm"
  cat >"$state/torch_smoke.py" <<'PY'
import time, torch
assert torch.cuda.is_available()
x = torch.randn(1024, 1024, device="cuda")
y = (x @ x.T).relu().sum()
model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data, target = torch.randn(512, 256, device="cuda"), torch.randint(0, 10, (512,), device="cuda")
start = time.time()
for _ in range(50):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(data), target)
    loss.backward()
    opt.step()
torch.cuda.synchronize()
print(f"loss {loss.item():.4f}, 50 steps in {time.time() - start:.3f} s, checksum {y.item():.1f}")
PY
  python3 "$state/torch_smoke.py" || fail=1
  run torch_smoke shm "" python3 "$state/torch_smoke.py"
fi
exit $fail
