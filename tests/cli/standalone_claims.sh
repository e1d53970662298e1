#!/bin/bash
# The standalone commands as docs/hypervisor-api.md describes them, end to end on the soft GPU:
#   - `up --vram-expand 1 --tflops-oversell 2 --influx-log F` reaches the daemon: 120 GiB fits on
#     an 80 GiB H100, 200 GiB does not; two 100% vGPUs fit on one device, a third does not; F
#     gets Influx lines;
#   - `run` forwards SIGTERM to its command, exits with the command's code and returns the vGPU;
#   - TF_HYPERVISOR points the client commands at a hypervisor (and a wrong one is a clear error);
#   - `run --remote host:port` gets a remote vGPU from that hypervisor: the command runs with the
#     client stub and a TCP worker, and a driver-API program (vmm_driver) passes through it.
#
#   standalone_claims.sh <tensor-fusion> <vmm_driver program>
# Prints "standalone_claims: all checks passed" and exits 0, or names the failed check and exits 1.
set -u
TF=$1
VMM=$2
work=$(mktemp -d /tmp/tf-standalone-claims-XXXXXX)
export TF_HOME=$work/home
export TF_SOFTGPU_STATE_DIR=$work/softgpu
export TF_SOFTGPU_DEVICES=H100
unset TF_HYPERVISOR
mkdir -p "$TF_SOFTGPU_STATE_DIR"

cleanup() {
  "$TF" down >/dev/null 2>&1
  rm -rf "$work"
}
fail() {
  echo "standalone_claims: FAILED: $*"
  for log in "$TF_HOME"/*.log; do [ -f "$log" ] && { echo "--- $log"; tail -20 "$log"; }; done
  cleanup
  exit 1
}
# Waits up to 30 s for a file to exist.
await() {
  for _ in $(seq 300); do [ -e "$1" ] && return 0; sleep 0.1; done
  return 1
}
vgpu_count() { # the number of vGPUs the hypervisor lists
  "$TF" ps --json | grep -c '"region"'
}

"$TF" up --region-dir "$work/regions" --vram-expand 1 --tflops-oversell 2 --influx-log "$work/influx.log" \
  >/dev/null || fail "up"
addr=$(sed -n 's/.*"address": *"\([^"]*\)".*/\1/p' "$TF_HOME/hypervisor.json")
[ -n "$addr" ] || fail "no address in $TF_HOME/hypervisor.json"
# --influx-log reaches the daemon too: each tick appends the device's line.
await "$work/influx.log" || fail "no influx log after up --influx-log"
grep -q '^tf_gpu_usage,node=[^,]*,uuid=GPU-[0-9a-f-]* memory_used=[0-9]*i,' "$work/influx.log" ||
  fail "the influx log has no tf_gpu_usage line: $(head -3 "$work/influx.log")"

# ---- oversubscription flags --------------------------------------------------------------
# (for hard vGPUs, whose worker can move idle memory off the device; a soft vGPU's cannot leave it)
"$TF" run --isolation hard --vram 120GiB -- true || fail "120 GiB refused although --vram-expand 1 allows 160 GiB"
out=$("$TF" run --vram 120GiB -- true 2>&1) && fail "a soft vGPU of 120 GiB granted on an 80 GiB device"
echo "$out" | grep -q "requested by a soft vGPU" || fail "the soft 120 GiB refused without the reason: $out"
out=$("$TF" run --isolation hard --vram 200GiB -- true 2>&1) && fail "200 GiB granted on an 80 GiB device with --vram-expand 1"
echo "$out" | grep -q "does not fit" || fail "200 GiB refused without the reason: $out"
# Nested runs hold their vGPUs at once: two of 100% fit with --tflops-oversell 2, three do not.
"$TF" run --compute 100% -- "$TF" run --compute 100% -- true || fail "two 100% vGPUs refused with --tflops-oversell 2"
out=$("$TF" run --compute 100% -- "$TF" run --compute 100% -- "$TF" run --compute 100% -- true 2>&1) &&
  fail "three 100% vGPUs granted with --tflops-oversell 2"
echo "$out" | grep -q "does not fit" || fail "the third 100% vGPU refused without the reason: $out"
[ "$(vgpu_count)" = 0 ] || fail "vGPUs left behind after the oversubscription runs"

# ---- run forwards SIGTERM and returns the vGPU -------------------------------------------
"$TF" run --vram 1GiB --name sig -- sh -c "echo \$\$ > $work/cmdpid; trap 'echo got-TERM > $work/sig; exit 7' TERM; \
touch $work/started; while :; do sleep 0.05; done" &
runpid=$!
await "$work/started" || fail "the command under run did not start"
[ "$(vgpu_count)" = 1 ] || fail "the running command's vGPU is not listed"
kill -TERM $runpid
for _ in $(seq 200); do kill -0 $runpid 2>/dev/null || break; sleep 0.1; done
if kill -0 $runpid 2>/dev/null; then # not forwarded: stop both, then fail
  kill -KILL "$(cat "$work/cmdpid")" 2>/dev/null
  wait $runpid
  fail "run and its command were still running 20 s after SIGTERM: the signal was not forwarded"
fi
wait $runpid
rc=$?
[ $rc = 7 ] || fail "run exited $rc, not the command's 7"
grep -q got-TERM "$work/sig" 2>/dev/null || fail "the command did not get the SIGTERM sent to run"
[ "$(vgpu_count)" = 0 ] || fail "the vGPU was not returned after a signalled run"

# ---- TF_HYPERVISOR -----------------------------------------------------------------------
elsewhere=$work/no-state-here
out=$(TF_HOME=$elsewhere "$TF" ps 2>&1) && fail "ps found a hypervisor with no state and no TF_HYPERVISOR"
echo "$out" | grep -q "no hypervisor is running" || fail "ps without a hypervisor: $out"
TF_HOME=$elsewhere TF_HYPERVISOR=$addr "$TF" ps --json | grep -q "NVIDIA H100" ||
  fail "ps with TF_HYPERVISOR=$addr did not reach the hypervisor"
out=$(TF_HOME=$elsewhere TF_HYPERVISOR=127.0.0.1:1 "$TF" ps 2>&1) && fail "ps succeeded against a closed port"
echo "$out" | grep -q "cannot reach the hypervisor at 127.0.0.1:1" || fail "ps against a closed port: $out"
out=$(TF_HOME=$elsewhere TF_HYPERVISOR=nonsense "$TF" ps 2>&1) && fail "ps accepted TF_HYPERVISOR=nonsense"
echo "$out" | grep -q "host:port" || fail "a malformed TF_HYPERVISOR: $out"

# ---- run --remote ------------------------------------------------------------------------
TF_HOME=$elsewhere "$TF" run --remote "$addr" --vram 1GiB --name far -- sh -c \
  "echo \"\$TF_REMOTE_WORKER \$LD_LIBRARY_PATH\" > $work/remote-env; touch $work/remote-started; \
while [ ! -e $work/remote-done ]; do sleep 0.05; done" &
runpid=$!
await "$work/remote-started" || fail "the command under run --remote did not start"
listing=$("$TF" ps --json)
echo "$listing" | grep -q '"isolation": "remote"' || fail "the --remote vGPU is not a remote one: $listing"
read -r worker libpath < "$work/remote-env"
case "$worker" in tcp://*) ;; *) fail "the command got TF_REMOTE_WORKER='$worker', not a TCP worker" ;; esac
case "$libpath" in */lib/remote*) ;; *) fail "the command's LD_LIBRARY_PATH '$libpath' does not start with the stub" ;; esac
touch "$work/remote-done"
wait $runpid || fail "run --remote exited $?"
[ "$(vgpu_count)" = 0 ] || fail "the remote vGPU was not returned"
# A real driver-API program through the remote vGPU's stub and worker.
TF_HOME=$elsewhere "$TF" run --remote "$addr" --vram 2GiB -- "$VMM" > "$work/vmm.out" 2>&1 ||
  fail "vmm_driver through run --remote: $(tail -5 "$work/vmm.out")"
[ "$(vgpu_count)" = 0 ] || fail "the remote vGPU of vmm_driver was not returned"

cleanup
echo "standalone_claims: all checks passed"
