#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the remoting test programs and benchmark against NVIDIA's
# driver (the worker dlopen()s the real libcuda.so.1), and a PyTorch smoke test through the stub
# (said NOT RUN, exit 2, when torch is not installed). Written on a machine without a GPU: not
# yet run on one.
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

echo
if ! python3 -c "import torch" 2>/dev/null; then
  echo "NOT RUN: PyTorch smoke test (torch is not importable here)"
  notrun=1
else
  echo "== PyTorch smoke test: native, then through the stub over shm and TCP (same seed)"
  cat >"$state/torch_smoke.py" <<'PY'
import time, torch
torch.manual_seed(0)
assert torch.cuda.is_available()
x = torch.randn(1024, 1024, device="cuda")
y = (x @ x.T).relu().sum()
model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data, target = torch.randn(512, 256, device="cuda"), torch.randint(0, 10, (512,), device="cuda")
torch.cuda.synchronize()
start = time.time()
for _ in range(50):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(data), target)
    loss.backward()
    opt.step()
torch.cuda.synchronize()
print(f"RESULT loss {loss.item():.5f} checksum {y.item():.1f} seconds {time.time() - start:.4f}")
PY
  python3 "$state/torch_smoke.py" >"$state/torch-native.log" 2>&1 || { echo "FAIL torch natively"; fail=1; }
  native=$(sed -n 's/^RESULT //p' "$state/torch-native.log")
  echo "native:      $native"
  for transport in shm tcp; do
    run torch_smoke "$transport" "" python3 "$state/torch_smoke.py"
    remote=$(sed -n 's/^RESULT //p' "$state/torch_smoke-$transport.log")
    echo "via $transport: $remote"
    # Same seed, same device: the loss must agree; the time ratio is the stub's overhead.
    python3 - "$native" "$remote" "$transport" <<'PY' || fail=1
import sys
def parse(s):
    f = s.split()
    return float(f[1]), float(f[5])
try:
    (ln, tn), (lr, tr) = parse(sys.argv[1]), parse(sys.argv[2])
except Exception:
    print(f"FAIL torch over {sys.argv[3]}: no result"); sys.exit(1)
ok = abs(ln - lr) <= 1e-3 * max(1.0, abs(ln))
print(f"{'PASS' if ok else 'FAIL'} torch over {sys.argv[3]}: loss {lr} vs native {ln}; "
      f"50 training steps {tr:.3f} s vs native {tn:.3f} s ({tr / tn:.2f}x)")
sys.exit(0 if ok else 1)
PY
  done
fi
# 0: everything ran and passed; 1: something failed; 2: something could not run here.
[ "$fail" -ne 0 ] && exit 1
[ "${notrun:-0}" -ne 0 ] && exit 2
exit 0
