#!/usr/bin/env bash
# Migration end to end: a hard vGPU with VRAM tiers on GPU 0 of a two-GPU soft node, a program
# running in it (tests/remoting/migrate_program.cu: two streams, an event, kernels and two
# executable graphs each round, module variables, 256 MiB), moved to GPU 1 with
# `tensor-fusion migrate` mid-run. The program
# finishes with every byte as its CPU computes it; the vGPU is on GPU 1; the old worker goes
# once its client has left; the metrics count the move and its pause. Then the same to another
# node: a second hypervisor on this machine, the program moved there over TCP and the vGPU
# returned through the first. Then what is refused.
#
#   migration_e2e.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
tf="$build/bin/tensor-fusion"
prog="$build/tests/remoting/migrate_program"
export TF_HOME=$(mktemp -d /tmp/tf-migrate-XXXXXX)
export TF_VGPU_DIR=$TF_HOME/regions TF_SOFTGPU_STATE_DIR=$TF_HOME/softgpu TF_SOFTGPU_DEVICES=H100:2GiB,H100:2GiB
mkdir -p "$TF_VGPU_DIR" "$TF_SOFTGPU_STATE_DIR"
fail=0
nodeb=$TF_HOME/nodeb
mkdir -p "$nodeb/regions" "$nodeb/softgpu"
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  for home in "$TF_HOME" "$nodeb"; do
    python3 - "$home/state.json" <<'PY' 2>/dev/null | xargs -r kill 2>/dev/null || true
import json, sys
for v in json.load(open(sys.argv[1]))["vgpus"]:
    if v.get("worker", {}).get("pid"): print(v["worker"]["pid"])
PY
    TF_HOME=$home "$tf" down >/dev/null 2>&1 || true
  done
  [ -n "${oldpid:-}" ] && kill "$oldpid" 2>/dev/null || true
  [ -n "${oldpid2:-}" ] && kill "$oldpid2" 2>/dev/null || true
  rm -rf "$TF_HOME"
}
trap cleanup EXIT

TF_LOG_LEVEL=info "$tf" up --region-dir "$TF_VGPU_DIR" --vram-tiers
source "$(dirname "$0")/api.sh"

echo "== a program in a hard vGPU on GPU 0, moved to GPU 1 mid-run"
"$tf" run --name mv --isolation hard --vram 512MiB --compute 50% -- "$prog" 256 10 300 graph > "$TF_HOME/p.out" 2> "$TF_HOME/p.log" &
pp=$!
reached "$TF_HOME/p.out" $pp 2 || exit 1
before=$(api GET /api/v1/vgpus/mv)
oldpid=$(echo "$before" | field 'd["worker"]["pid"]')
olddev=$(echo "$before" | field 'd["devices"][0]["uuid"]')
"$tf" migrate mv --to 1 | tee "$TF_HOME/migrate.out" | sed 's/^/  /'
grep -q "1 of 1 client(s)" "$TF_HOME/migrate.out" || { echo "FAIL: the client did not move"; fail=1; }
after=$(api GET /api/v1/vgpus/mv)
newdev=$(echo "$after" | field 'd["devices"][0]["uuid"]')
gpu1=$(api GET /api/v1/devices | field 'd["devices"][1]["uuid"]')
echo "  vGPU mv: $olddev -> $newdev (GPU 1: $gpu1)"
[ "$newdev" = "$gpu1" ] && [ "$olddev" != "$newdev" ] || { echo "FAIL: the vGPU is not on GPU 1"; fail=1; }
echo "== metrics, while the program runs on GPU 1"
curl -s "http://$addr/metrics" > "$TF_HOME/metrics"
{ grep -E '^tf_vgpu_migr[a-z_]+\{.*vgpu="mv"' "$TF_HOME/metrics" || true; } | sed 's/^/  /'
grep -qE '^tf_vgpu_migrations_total\{.*vgpu="mv",result="done"\} 1$' "$TF_HOME/metrics" \
  || { echo "FAIL: the metrics do not count the move"; fail=1; }
awk '/^tf_vgpu_migration_pause_seconds\{.*vgpu="mv"\}/ { ok = $2 > 0 } END { exit !ok }' "$TF_HOME/metrics" \
  || { echo "FAIL: no pause in the metrics"; fail=1; }

wait $pp || { echo "FAIL: the program failed after the move"; fail=1; }
grep -h "round 10\|OK\|FAIL" "$TF_HOME/p.out" | sed 's/^/  /'
grep -q "^OK 256 MiB, 10 rounds" "$TF_HOME/p.out" || { echo "FAIL: wrong results after the move"; cat "$TF_HOME/p.log"; fail=1; }
# The old worker goes once its client has left (the tier manager looks every tick).
for _ in $(seq 100); do kill -0 "$oldpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$oldpid" 2>/dev/null; then
  echo "FAIL: the old worker ($oldpid) is still running"; fail=1
  tail -20 "$TF_HOME"/worker-mv.log; grep -i "migr\|moved\|drain" "$TF_HOME/hypervisor.log" | tail
else echo "  the old worker ($oldpid) has stopped"; fi

echo "== to another node: a second hypervisor on this machine, reached over TCP"
TF_HOME=$nodeb TF_VGPU_DIR=$nodeb/regions TF_SOFTGPU_STATE_DIR=$nodeb/softgpu TF_SOFTGPU_NODE=nodeb TF_LOG_LEVEL=info \
  "$tf" up --region-dir "$nodeb/regions" | sed 's/^/  /'
baddr=$(python3 -c "import json; print(json.load(open('$nodeb/hypervisor.json'))['address'])")
"$tf" run --name far --isolation hard --vram 512MiB --compute 50% -- "$prog" 128 10 300 graph > "$TF_HOME/far.out" 2> "$TF_HOME/far.log" &
pf=$!
reached "$TF_HOME/far.out" $pf 2 || exit 1
oldpid2=$(api GET /api/v1/vgpus/far | field 'd["worker"]["pid"]')
"$tf" migrate far --to "$baddr" | tee "$TF_HOME/migrate2.out" | sed 's/^/  /'
grep -q "1 of 1 client(s)" "$TF_HOME/migrate2.out" || { echo "FAIL: the client did not move to the other node"; fail=1; }
api GET /api/v1/vgpus/far > /dev/null
echo "  node A now: HTTP $(cat "$TF_HOME/status"): $(field 'd.get("error", "")' < "$TF_HOME/answer")"
[ "$(cat "$TF_HOME/status")" = 404 ] && grep -q "moved to $baddr" "$TF_HOME/answer" || { echo "FAIL: node A does not say where it went"; fail=1; }
remote=$(curl -s "http://$baddr/api/v1/vgpus" | field '[(v["id"], v["request"]["isolation"]) for v in d["vgpus"]]')
echo "  node B's vGPUs: $remote"
[[ "$remote" == *"'far', 'remote'"* ]] || { echo "FAIL: node B does not have it"; fail=1; }
wait $pf || { echo "FAIL: the program failed after moving to the other node"; fail=1; }
grep -h "^OK\|FAIL" "$TF_HOME/far.out" | sed 's/^/  /'
grep -q "^OK 128 MiB, 10 rounds" "$TF_HOME/far.out" || { echo "FAIL: wrong results after the move"; cat "$TF_HOME/far.log"; fail=1; }
# `run` returned the vGPU to node A, which handed it on to node B.
for _ in $(seq 50); do
  [ "$(curl -s "http://$baddr/api/v1/vgpus" | field 'len(d["vgpus"])')" = 0 ] && break
  sleep 0.1
done
[ "$(curl -s "http://$baddr/api/v1/vgpus" | field 'len(d["vgpus"])')" = 0 ] && echo "  returned on node B too" \
  || { echo "FAIL: node B still holds the vGPU"; fail=1; }
for _ in $(seq 100); do kill -0 "$oldpid2" 2>/dev/null || break; sleep 0.1; done
kill -0 "$oldpid2" 2>/dev/null && { echo "FAIL: node A's old worker is still running"; fail=1; }
api POST /api/v1/vgpus/incoming '{"request":{"vramLimit":"256MiB","computeLimit":10},"token":"short"}' > /dev/null
echo "  an incoming vGPU with a short token: HTTP $(cat "$TF_HOME/status")"
[ "$(cat "$TF_HOME/status")" = 400 ] || { echo "FAIL: a short clients' token was taken"; fail=1; }

echo "== refused"
api POST /api/v1/vgpus '{"name":"softone","vramLimit":"256MiB","computeLimit":10}' > /dev/null
api POST /api/v1/vgpus '{"name":"hardone","vramLimit":"256MiB","computeLimit":10,"isolation":"hard"}' > /dev/null
check() {  # check WHAT STATUS TEXT VGPU BODY
  api POST "/api/v1/vgpus/$4/migrate" "$5" > /dev/null
  local code msg
  code=$(cat "$TF_HOME/status") msg=$(field 'd.get("error", "")' < "$TF_HOME/answer")
  echo "  $1: HTTP $code: $msg"
  [ "$code" = "$2" ] && [[ "$msg" == *"$3"* ]] || { echo "FAIL: $1 should be $2 ($3)"; fail=1; }
}
check "a soft vGPU" 409 "soft-isolated" softone '{"device":"1"}'
check "to the GPU it is on" 400 "already" hardone "{\"device\":\"$(api GET /api/v1/vgpus/hardone | field 'd["devices"][0]["uuid"]')\"}"
check "to no such GPU" 404 "no device" hardone '{"device":"7"}'
check "no device named" 400 "device:" hardone '{}'
check "an unknown vGPU" 404 "no vGPU" nosuch '{"device":"1"}'
check "to a node nobody listens on" 503 "127.0.0.1:9" hardone '{"device":"127.0.0.1:9"}'
"$tf" migrate nosuch --to 1 > /dev/null 2> "$TF_HOME/cli.err" && { echo "FAIL: the CLI did not fail"; fail=1; }
echo "  tensor-fusion migrate nosuch: $(cat "$TF_HOME/cli.err")"

echo "== down --all: every vGPU returned, their workers stopped"
hardpid=$(api GET /api/v1/vgpus/hardone | field 'd["worker"]["pid"]')
"$tf" down --all | tee "$TF_HOME/down.out" | sed 's/^/  /'
grep -q "returned 2 vGPU(s)" "$TF_HOME/down.out" || { echo "FAIL: down --all did not return softone and hardone"; fail=1; }
for _ in $(seq 50); do kill -0 "$hardpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$hardpid" 2>/dev/null && { echo "FAIL: hardone's worker ($hardpid) outlived down --all"; fail=1; }

[ "$fail" = 0 ] && echo "migration: all checks passed"
exit $fail
