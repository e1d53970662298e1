#!/usr/bin/env bash
# Runs one CUDA test program through the remoting stub against a worker started here.
#
#   run_remote.sh tcp|tls|shm WORKER SOFTGPU_LIB_DIR STUB_DIR STATE_DIR EXTRA_LD PROGRAM [ARGS...]
#
# TF_REMOTE_CLIENTS=N runs N copies of the program at once against the one worker.
# TF_TEST_SECOND_TOKEN=T gives the worker a second tenant with token T (the program gets the
# first tenant's token).
# TF_TEST_WORKER_ARGS="--remap-handles ..." gives the worker further arguments.
# The worker serves the soft GPU (SOFTGPU_LIB_DIR/libcuda.so.1) on tcp://127.0.0.1:0 or a fresh
# shm name; its address is read from its "listening on ..." line. The program sees only the
# stub (LD_LIBRARY_PATH=STUB_DIR[EXTRA_LD]) and checks its own results. The test fails if the
# program fails, if the worker did not survive its client, or if the worker, stopped cleanly
# with SIGTERM at the end (so that a sanitizer build runs its exit checks, LeakSanitizer's
# among them), does not exit 0 or wrote any sanitizer report to its log.
set -u
transport=$1 worker=$2 libdir=$3 stubdir=$4 state=$5 extra=$6
shift 6
mkdir -p "$state"
rm -rf "${state:?}"/*
token="tok-$$-$RANDOM"
tls=()
case "$transport" in
  tcp) listen="tcp://127.0.0.1:0" ;;
  shm) listen="shm://tf-test-$$-$RANDOM" ;;
  tls)
    listen="tls://127.0.0.1:0"
    # A certificate for this run only; the stub trusts exactly it.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
      -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
      -keyout "$state/worker.key" -out "$state/worker.pem" 2>"$state/openssl.log" || {
      cat "$state/openssl.log" >&2; exit 1; }
    tls=(--tls-cert "$state/worker.pem" --tls-key "$state/worker.key")
    export TF_REMOTE_TLS_CA="$state/worker.pem"
    ;;
  *) echo "unknown transport $transport" >&2; exit 2 ;;
esac
log="$state/worker.log"
TF_SOFTGPU_STATE_DIR="$state" "$worker" --listen "$listen" --driver "$libdir/libcuda.so.1" \
  --token "$token" ${TF_TEST_SECOND_TOKEN:+--token "$TF_TEST_SECOND_TOKEN"} "${tls[@]}" \
  ${TF_TEST_WORKER_ARGS:-} >"$log" 2>&1 &
wpid=$!
trap 'kill -9 $wpid 2>/dev/null' EXIT
addr=""
for _ in $(seq 100); do
  addr=$(sed -n 's/^listening on //p' "$log")
  [ -n "$addr" ] && break
  kill -0 $wpid 2>/dev/null || break
  sleep 0.1
done
if [ -z "$addr" ]; then
  echo "worker did not start:" >&2
  cat "$log" >&2
  exit 1
fi
clients=${TF_REMOTE_CLIENTS:-1}
pids=()
for _ in $(seq "$clients"); do
  env TF_REMOTE_WORKER="$addr" TF_REMOTE_TOKEN="$token" LD_LIBRARY_PATH="$stubdir$extra" "$@" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do
  wait "$p" || rc=1
done
if ! kill -0 $wpid 2>/dev/null; then
  echo "the worker died while serving the client:" >&2
  cat "$log" >&2
  exit 1
fi
# A clean stop: SIGTERM, then its exit status (LeakSanitizer reports at exit). A worker that
# does not exit within 60 s (a sanitizer report takes a while to symbolise) is killed, and that
# fails the test.
kill -TERM $wpid
( sleep 60 </dev/null >/dev/null 2>&1; kill -9 $wpid 2>/dev/null && echo "the worker did not exit within 60 s of SIGTERM" >&2 ) &
watchdog=$!
wait $wpid
wrc=$?
kill $watchdog 2>/dev/null
wait $watchdog 2>/dev/null
trap - EXIT
if grep -qE "ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: [A-Za-z]+Sanitizer" "$log"; then
  echo "the worker's log holds a sanitizer report:" >&2
  cat "$log" >&2
  exit 1
fi
if [ "$wrc" != 0 ]; then
  echo "the worker exited with status $wrc after SIGTERM:" >&2
  cat "$log" >&2
  exit 1
fi
exit $rc
