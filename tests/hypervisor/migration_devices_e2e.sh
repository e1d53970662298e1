#!/usr/bin/env bash
# Migration of a vGPU of several devices, end to end: a hard vGPU with VRAM tiers over GPUs 0
# and 1 of a four-GPU soft node, a program using both (tests/hypervisor/two_device_program.cu:
# a buffer of its own size, contents and stream on each device), moved to GPUs 2,3 with
# `tensor-fusion migrate --to 2,3` mid-run, then to GPUs 1,0 (the reverse order: its device 0
# goes to GPU 1), and then to another node (a second hypervisor on this machine, two GPUs, over
# TCP). The program finishes with every byte right on both devices; the vGPU lists
# the GPUs named, in that order, and their memory figures show the program's device 0 (64 MiB)
# on the first and its device 1 (32 MiB) on the second; the other node made it over two
# devices; the three old workers stop once the program has left them. Then what is refused.
#
#   migration_devices_e2e.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
tf="$build/bin/tensor-fusion"
prog="$build/tests/hypervisor/two_device_program"
export TF_HOME=$(mktemp -d /tmp/tf-migrate-devices-XXXXXX)
export TF_VGPU_DIR=$TF_HOME/regions TF_SOFTGPU_STATE_DIR=$TF_HOME/softgpu
export TF_SOFTGPU_DEVICES=H100:2GiB,H100:2GiB,H100:2GiB,H100:2GiB
mkdir -p "$TF_VGPU_DIR" "$TF_SOFTGPU_STATE_DIR"
fail=0
oldpids=()
nodeb=$TF_HOME/nodeb
mkdir -p "$nodeb/regions" "$nodeb/softgpu"
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  "$tf" down --all >/dev/null 2>&1 || true
  TF_HOME=$nodeb "$tf" down --all >/dev/null 2>&1 || true
  for p in "${oldpids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TF_HOME"
}
trap cleanup EXIT

TF_LOG_LEVEL=info "$tf" up --region-dir "$TF_VGPU_DIR" --vram-tiers
source "$(dirname "$0")/api.sh"
gpu() { api GET /api/v1/devices | field "d['devices'][$1]['uuid']"; }
on() { api GET /api/v1/vgpus/two | field '",".join(g["uuid"] for g in d["devices"])'; }
move() {  # move TO EXPECTED_UUIDS: migrate, check the answer and where the vGPU is
  oldpids+=("$(api GET /api/v1/vgpus/two | field 'd["worker"]["pid"]')")
  "$tf" migrate two --to "$1" | tee "$TF_HOME/migrate.out" | sed 's/^/  /'
  grep -q "1 of 1 client(s)" "$TF_HOME/migrate.out" || { echo "FAIL: the client did not move to $1"; fail=1; }
  local now
  now=$(on)
  echo "  vGPU two is on $now"
  [ "$now" = "$2" ] || { echo "FAIL: the vGPU is not on $2"; fail=1; }
  # The program's device 0 holds 64 MiB, its device 1 32 MiB: so must the GPUs, in that order.
  curl -s "http://$addr/metrics" > "$TF_HOME/metrics"
  local used
  used=$(python3 - "$TF_HOME/metrics" "$now" <<'PY'
import re, sys
text, uuids = open(sys.argv[1]).read(), sys.argv[2].split(",")
got = []
for u in uuids:
    m = re.search(r'^tf_vgpu_memory_bytes\{[^}]*vgpu="two",uuid="%s",kind="used"\} (\S+)$' % u, text, re.M)
    got.append(str(int(float(m.group(1))) >> 20) if m else "none")
print(",".join(got))
PY
)
  echo "  device memory used there, in MiB: $used"
  [ "$used" = "64,32" ] || { echo "FAIL: the devices' memory is not where the program's ordinals say (64,32)"; fail=1; }
}

echo "== a program on two devices of a hard vGPU on GPUs 0,1, moved to 2,3, to 1,0, to another node"
TF_HOME=$nodeb TF_VGPU_DIR=$nodeb/regions TF_SOFTGPU_STATE_DIR=$nodeb/softgpu TF_SOFTGPU_NODE=nodeb \
  TF_SOFTGPU_DEVICES=H100:2GiB,H100:2GiB "$tf" up --region-dir "$nodeb/regions" | sed 's/^/  /'
baddr=$(python3 -c "import json; print(json.load(open('$nodeb/hypervisor.json'))['address'])")
"$tf" run --name two --gpus 2 --isolation hard --vram 256MiB --compute 30% -- "$prog" 64 18 300 \
  > "$TF_HOME/p.out" 2> "$TF_HOME/p.log" &
pp=$!
reached "$TF_HOME/p.out" $pp 2 || exit 1
[ "$(on)" = "$(gpu 0),$(gpu 1)" ] || { echo "FAIL: the vGPU is not on GPUs 0,1 but $(on)"; fail=1; }
move 2,3 "$(gpu 2),$(gpu 3)"
reached "$TF_HOME/p.out" $pp 6 || exit 1
move "1,$(gpu 0)" "$(gpu 1),$(gpu 0)"
grep -qE '^tf_vgpu_migrations_total\{.*vgpu="two",result="done"\} 2$' "$TF_HOME/metrics" \
  || { echo "FAIL: the metrics do not count both moves"; fail=1; }
reached "$TF_HOME/p.out" $pp 10 || exit 1
oldpids+=("$(api GET /api/v1/vgpus/two | field 'd["worker"]["pid"]')")
"$tf" migrate two --to "$baddr" | tee "$TF_HOME/migrate.out" | sed 's/^/  /'
grep -q "1 of 1 client(s)" "$TF_HOME/migrate.out" || { echo "FAIL: the client did not move to the other node"; fail=1; }
there=$(curl -s "http://$baddr/api/v1/vgpus" | field '[(v["id"], len(v["devices"])) for v in d["vgpus"]]')
echo "  node B's vGPUs (id, devices): $there"
[ "$there" = "[('two', 2)]" ] || { echo "FAIL: node B did not make it over two devices"; fail=1; }
wait $pp || { echo "FAIL: the program failed after the moves"; fail=1; }
grep -h "^OK\|FAIL" "$TF_HOME/p.out" | sed 's/^/  /'
grep -q "^OK 64+32 MiB on 2 devices, 18 rounds" "$TF_HOME/p.out" \
  || { echo "FAIL: wrong results after the moves"; cat "$TF_HOME/p.log"; fail=1; }
# Both old workers go once the program has left them (the tier manager looks every tick).
for p in "${oldpids[@]}"; do
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then echo "FAIL: the old worker $p is still running"; fail=1
  else echo "  the old worker $p has stopped"; fi
done

echo "== refused"
"$tf" run --name held --gpus 2 --isolation hard --vram 256MiB --compute 10% -- sleep 600 > /dev/null 2>&1 &
for _ in $(seq 100); do api GET /api/v1/vgpus/held > /dev/null; [ "$(cat "$TF_HOME/status")" = 200 ] && break; sleep 0.1; done
check() {  # check WHAT STATUS TEXT BODY
  api POST "/api/v1/vgpus/held/migrate" "$4" > /dev/null
  local code msg
  code=$(cat "$TF_HOME/status") msg=$(field 'd.get("error", "")' < "$TF_HOME/answer")
  echo "  $1: HTTP $code: $msg"
  [ "$code" = "$2" ] && [[ "$msg" == *"$3"* ]] || { echo "FAIL: $1 should be $2 ($3)"; fail=1; }
}
held=$(api GET /api/v1/vgpus/held | field '",".join(str(g["index"]) for g in d["devices"])')
check "one GPU for two devices" 400 "spans 2 device(s)" '{"device":"3"}'
check "three GPUs for two devices" 400 "spans 2 device(s)" '{"device":"1,2,3"}'
check "a GPU named twice" 400 "named twice" '{"device":"2,2"}'
check "no such GPU" 404 "no device '9'" '{"device":"2,9"}'
check "an empty name" 404 "no device ''" '{"device":"2,"}'
check "the GPUs it is on" 400 "already" "{\"device\":\"$held\"}"
check "the GPUs it is on, reordered" 400 "already" "{\"device\":\"$(echo "$held" | awk -F, '{print $2","$1}')\"}"
api POST /api/v1/vgpus "{\"name\":\"big\",\"vramLimit\":\"2GiB\",\"computeLimit\":10,\"device\":\"$(gpu 3)\"}" > /dev/null
check "GPUs without room for it" 409 "fits on 1 of this node" '{"device":"2,3"}'
"$tf" migrate held --to 2 > /dev/null 2> "$TF_HOME/cli.err" && { echo "FAIL: the CLI did not fail"; fail=1; }
echo "  tensor-fusion migrate held --to 2: $(cat "$TF_HOME/cli.err")"
[ "$(api GET /api/v1/vgpus/held | field '",".join(str(g["index"]) for g in d["devices"])')" = "$held" ] \
  || { echo "FAIL: a refused move changed the vGPU"; fail=1; }

[ "$fail" = 0 ] && echo "migration of several devices: all checks passed"
exit $fail
