# Sourced by the hypervisor's end-to-end scripts, once $TF_HOME/hypervisor.json exists.
#   api METHOD PATH [BODY]: the hypervisor's answer (JSON); its HTTP status in $TF_HOME/status
#   field EXPR: EXPR evaluated over the JSON on stdin (as d)
#   reached OUT PID N: waits (120 s at most) until the program PID, printing to OUT (its stderr
#     in OUT's .log beside it), has printed "round N"; says why and fails if it ends first
addr=$(python3 -c "import json; print(json.load(open('$TF_HOME/hypervisor.json'))['address'])")
api() {
  curl -s -o "$TF_HOME/answer" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
    --data "${3:-}" "http://$addr$2" > "$TF_HOME/status"
  cat "$TF_HOME/answer"
}
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
reached() {
  for _ in $(seq 1200); do
    grep -q "^round $3$" "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: the program did not reach round $3"; cat "$1" "${1%.out}.log"; return 1
}
