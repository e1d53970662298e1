#!/usr/bin/env bash
# `tensor-fusion agent` refuses what it cannot work with before it needs a cluster, each with
# exit status 2 and a message that names the flag or variable: no portal configured, a ws://
# portal, a malformed pin, no agent id. Prints PASS only when every check held.
set -uo pipefail
CLI=$1
unset CLOUD_ENDPOINT AGENT_ID ENROLL_TOKEN PORTAL_PIN
pin=sha256:$(printf 'a%.0s' $(seq 64))
fail() { echo "FAIL: $*"; exit 1; }
# expect STATUS TEXT CMD...: the command exits with STATUS and prints TEXT.
expect() {
  local want=$1 text=$2; shift 2
  out=$("$@" 2>&1)
  rc=$?
  [ $rc -eq "$want" ] || fail "$*: exit $rc, wanted $want: $out"
  grep -qF -- "$text" <<<"$out" || fail "$*: no \"$text\" in: $out"
}
expect 2 "no portal configured (--cloud-endpoint or CLOUD_ENDPOINT)" "$CLI" agent
expect 2 "ws:// is not encrypted" "$CLI" agent --cloud-endpoint ws://p/_ws --agent-id a:b --portal-pin "$pin"
expect 2 "portal pin must be sha256:" "$CLI" agent --cloud-endpoint wss://p/_ws --agent-id a:b --portal-pin sha256:12
expect 2 "agent id is required" env CLOUD_ENDPOINT=wss://p/_ws PORTAL_PIN="$pin" "$CLI" agent
# The environment is read (the install command's Secret): only the pin is wrong here.
expect 2 "portal pin must be" env CLOUD_ENDPOINT=wss://p/_ws AGENT_ID=a:b PORTAL_PIN=md5:x "$CLI" agent
echo PASS
