# Sourced by the hypervisor's end-to-end scripts, once $TF_HOME/hypervisor.json exists.
#   api METHOD PATH [BODY]: the hypervisor's answer (JSON); its HTTP status in $TF_HOME/status
#   field EXPR: EXPR evaluated over the JSON on stdin (as d)
addr=$(python3 -c "import json; print(json.load(open('$TF_HOME/hypervisor.json'))['address'])")
api() {
  curl -s -o "$TF_HOME/answer" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
    --data "${3:-}" "http://$addr$2" > "$TF_HOME/status"
  cat "$TF_HOME/answer"
}
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
