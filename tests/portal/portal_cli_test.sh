#!/usr/bin/env bash
# `tensor-fusion portal` as a process: starts on a free port with a password file, serves HTTPS
# (login works, a wrong password does not), stops cleanly on SIGTERM, and keeps its certificate
# (same pin) and its admin across a restart. Prints PASS only when every check held.
set -uo pipefail
CLI=$1
dir=$(mktemp -d)
trap 'kill -TERM $pid 2>/dev/null; rm -rf "$dir"' EXIT
echo "s3cret-pass" > "$dir/pw"
fail() { echo "FAIL: $*"; cat "$dir/out" 2>/dev/null; exit 1; }

start() {
  "$CLI" portal --data-dir "$dir/data" --listen 127.0.0.1:0 --admin-password-file "$dir/pw" > "$dir/out" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "certificate pin" "$dir/out" && break; sleep 0.1; done
  port=$(sed -n 's/^portal listening on 127.0.0.1:\([0-9]*\) (TLS)$/\1/p' "$dir/out")
  pin=$(sed -n 's/^certificate pin //p' "$dir/out")
  [ -n "$port" ] && [ -n "$pin" ] || fail "no listening line"
}
login() {
  curl -sk -o /dev/null -w '%{http_code}' -X POST "https://127.0.0.1:$port/api/v1/login" \
    -H 'Content-Type: application/json' -d "{\"username\":\"admin\",\"password\":\"$1\"}"
}
stop() {
  kill -TERM $pid
  wait $pid
  rc=$?
  [ $rc -eq 0 ] || fail "exit status $rc after SIGTERM"
  grep -q "portal stopped" "$dir/out" || fail "no clean stop"
}

start
first_pin=$pin
[ "$(login s3cret-pass)" = 200 ] || fail "login with the file's password"
[ "$(login wrong)" = 401 ] || fail "a wrong password was not refused"
grep -q "first admin" "$dir/out" && fail "printed a generated password although one was given"
stop
start
[ "$pin" = "$first_pin" ] || fail "the pin changed across a restart ($first_pin -> $pin)"
[ "$(login s3cret-pass)" = 200 ] || fail "login after restart"
stop
[ "$(stat -c %a "$dir/data/portal.key")" = 600 ] || fail "the key file is not 0600"
echo PASS
