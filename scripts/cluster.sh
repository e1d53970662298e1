#!/usr/bin/env bash
# A local Kubernetes cluster from real parts, for the tests and for trying TensorFusion out:
# etcd (Debian), kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy and kubelet
# (Kubernetes 1.20.2 built from Debian's source by scripts/k8s-build.sh, cached outside the
# checkout), and under each kubelet its own containerd + runc (Debian). Nodes:
#   tf-gpu-0   soft GPUs 2xH100 (TF_CLUSTER_GPU0_DEVICES, JSON: the soft GPU's "devices" list)
#   tf-gpu-1   soft GPUs 1xL4   (TF_CLUSTER_GPU1_DEVICES)
#   tf-cpu-0   no GPU
#
#   scripts/cluster.sh up [--control-plane-only] [--nodes "tf-gpu-0 tf-cpu-0"]
#   scripts/cluster.sh down                     # stops everything, undoes host changes
#   scripts/cluster.sh status                   # what runs
#   scripts/cluster.sh env                      # prints: export KUBECONFIG=...
#   scripts/cluster.sh restart-apiserver        # stop and start kube-apiserver (tests)
#   scripts/cluster.sh load-image NAME TAR      # import an OCI archive into every node
#   scripts/cluster.sh scheduler-up             # the tensor-fusion-scheduler kube-scheduler,
#                                               # once deploy/ is applied (it needs the Service;
#                                               # TF_EXTENDER_URL: an extender elsewhere)
#
# Environment: TF_CLUSTER_DIR (state, default /tmp/tf-cluster), TF_CLUSTER_PORT_BASE (default
# 26000; etcd base, base+1; apiserver base+2; controller-manager base+3; scheduler base+4;
# kube-proxy base+5/6; tensor-fusion-scheduler base+7; node i: kubelet base+10+4i, its healthz base+11+4i).
# Several clusters on one host are fine for --control-plane-only (distinct dirs and bases);
# nodes are host-wide (cgroups, iptables, /var/lib/kubelet paths): one cluster with nodes at once.
#
# The pitfalls this handles are in ../shared/reference/kubernetes.md: several kubelets on one
# host need their own containerd, cgroup root, ports and a private mount namespace with bind
# mounts over /var/log/pods, /var/log/containers and /var/lib/kubelet/device-plugins.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=${TF_CLUSTER_DIR:-/tmp/tf-cluster}
B=${TF_CLUSTER_PORT_BASE:-26000}
ETCD_PORT=$B ETCD_PEER=$((B + 1)) API_PORT=$((B + 2)) CM_PORT=$((B + 3)) SCHED_PORT=$((B + 4))
PROXY_HEALTH=$((B + 5)) PROXY_METRICS=$((B + 6)) TF_SCHED_PORT=$((B + 7))
SERVICE_CIDR=10.96.0.0/16 SERVICE_IP=10.96.0.1
ALL_NODES="tf-gpu-0 tf-gpu-1 tf-cpu-0"
GPU0_DEVICES=${TF_CLUSTER_GPU0_DEVICES:-'[{"model": "H100", "count": 2}]'}
GPU1_DEVICES=${TF_CLUSTER_GPU1_DEVICES:-'[{"model": "L4", "count": 1}]'}
log() { echo "cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

host_ip() { ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1; }

# --- processes --------------------------------------------------------------------------------
# Each daemon runs in its own session, its pid in $D/pids/NAME, its log in $D/logs/NAME.log.
start_daemon() {  # NAME CMD...
  local name=$1; shift
  mkdir -p "$D/pids" "$D/logs"
  setsid "$@" >>"$D/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$D/pids/$name"
}
# A daemon restarted whenever it exits, as the kubelet restarts a control-plane pod: a
# kube-scheduler with leader election ends itself when it cannot renew its lease (an apiserver
# restart), and must come back. stop_daemon ends the loop and the daemon (one process group).
start_supervised() {  # NAME CMD...
  local name=$1; shift
  start_daemon "$name" bash -c 'while :; do "$@"; echo "cluster: $1 exited ($?); restarting in 1s" >&2; sleep 1; done' _ "$@"
}
daemon_alive() { [ -f "$D/pids/$1" ] && kill -0 "$(cat "$D/pids/$1")" 2>/dev/null; }
stop_daemon() {  # NAME [grace seconds]
  local name=$1 grace=${2:-10} pid
  [ -f "$D/pids/$name" ] || return 0
  pid=$(cat "$D/pids/$name")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((grace * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$D/pids/$name"
}
wait_for() {  # SECONDS DESCRIPTION CMD...
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not come up in ${secs}s (logs in $D/logs)"
    sleep 0.3
  done
}

# --- certificates -----------------------------------------------------------------------------
cert() {  # NAME CN O SAN(or "") CA
  local name=$1 cn=$2 org=$3 san=$4 ca=$5 ext
  [ -f "$D/pki/$name.crt" ] && return 0
  openssl genrsa -out "$D/pki/$name.key" 2048 2>/dev/null
  local subj="/CN=$cn"; [ -n "$org" ] && subj="/O=$org$subj"
  openssl req -new -key "$D/pki/$name.key" -subj "$subj" -out "$D/pki/$name.csr" 2>/dev/null
  ext="$D/pki/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$ext"
  openssl x509 -req -in "$D/pki/$name.csr" -CA "$D/pki/$ca.crt" -CAkey "$D/pki/$ca.key" \
    -CAcreateserial -days 365 -sha256 -extfile "$ext" -out "$D/pki/$name.crt" 2>/dev/null
  rm -f "$D/pki/$name.csr" "$ext"
}
ca() {  # NAME CN
  [ -f "$D/pki/$1.crt" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/pki/$1.key" -out "$D/pki/$1.crt" \
    -days 3650 -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}
make_pki() {
  local ip=$1
  mkdir -p "$D/pki"
  ca ca tensor-fusion-test-ca
  ca front-proxy-ca tensor-fusion-test-front-proxy-ca
  cert apiserver kube-apiserver "" \
    "IP:127.0.0.1,IP:$ip,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" ca
  cert admin kubernetes-admin system:masters "" ca
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "" ca
  cert controller-manager system:kube-controller-manager "" "" ca
  cert scheduler system:kube-scheduler "" "" ca
  cert kube-proxy system:kube-proxy "" "" ca
  cert front-proxy-client front-proxy-client "" "" front-proxy-ca
  [ -f "$D/pki/sa.key" ] || {
    openssl genrsa -out "$D/pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$D/pki/sa.key" -pubout -out "$D/pki/sa.pub" 2>/dev/null
  }
}
kubeconfig() {  # FILE CERTNAME SERVER
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tf-test
  cluster:
    server: $3
    certificate-authority: $D/pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $D/pki/$2.crt
    client-key: $D/pki/$2.key
contexts:
- name: tf-test
  context: {cluster: tf-test, user: $2}
current-context: tf-test
EOF
}

# --- control plane ----------------------------------------------------------------------------
k8s_bin() {
  [ -n "${K8S_BIN:-}" ] && return 0
  K8S_BIN=$("$ROOT/scripts/k8s-build.sh")
  [ -x "$K8S_BIN/kube-apiserver" ] || die "no Kubernetes binaries in '$K8S_BIN'"
}
api_ready() { curl -sf --cacert "$D/pki/ca.crt" --cert "$D/pki/admin.crt" --key "$D/pki/admin.key" \
  "https://127.0.0.1:$API_PORT/readyz" | grep -q ok; }

start_apiserver() {
  local ip=$1 bind=$2
  start_daemon kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address="$bind" --advertise-address="$ip" --secure-port="$API_PORT" --insecure-port=0 \
    --tls-cert-file="$D/pki/apiserver.crt" --tls-private-key-file="$D/pki/apiserver.key" \
    --client-ca-file="$D/pki/ca.crt" --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$D/pki/sa.pub" --service-account-signing-key-file="$D/pki/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --kubelet-client-certificate="$D/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$D/pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP \
    --requestheader-client-ca-file="$D/pki/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$D/pki/front-proxy-client.crt" \
    --proxy-client-key-file="$D/pki/front-proxy-client.key" \
    --watch-cache=true --v=1
  wait_for 120 kube-apiserver api_ready
}

control_plane_up() {
  local only=$1 ip bind
  ip=$(host_ip); [ -n "$ip" ] || die "no host address"
  # Pods reach the apiserver at the host's address; a control plane alone stays on loopback.
  if [ "$only" = 1 ]; then bind=127.0.0.1; ip=127.0.0.1; else bind=0.0.0.0; fi
  echo "$ip" >"$D/host-ip"
  make_pki "$(host_ip)"
  local server="https://127.0.0.1:$API_PORT"
  kubeconfig "$D/admin.kubeconfig" admin "$server"
  kubeconfig "$D/controller-manager.kubeconfig" controller-manager "$server"
  kubeconfig "$D/scheduler.kubeconfig" scheduler "$server"
  kubeconfig "$D/kube-proxy.kubeconfig" kube-proxy "$server"

  daemon_alive etcd || start_daemon etcd etcd --name tf-test --data-dir "$D/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "tf-test=http://127.0.0.1:$ETCD_PEER" --listen-metrics-urls "" \
    --quota-backend-bytes=2147483648 --auto-compaction-retention=0
  wait_for 60 etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"
  daemon_alive kube-apiserver || start_apiserver "$ip" "$bind"

  daemon_alive kube-controller-manager || start_daemon kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$D/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$D/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$D/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$CM_PORT" --port=0 --leader-elect=false \
    --service-account-private-key-file="$D/pki/sa.key" --root-ca-file="$D/pki/ca.crt" \
    --cluster-signing-cert-file="$D/pki/ca.crt" --cluster-signing-key-file="$D/pki/ca.key" \
    --use-service-account-credentials=true --controllers='*,-nodeipam,-cloud-node-lifecycle' \
    --node-monitor-grace-period=20s --pod-eviction-timeout=30s --v=1
  daemon_alive kube-scheduler || start_daemon kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$D/scheduler.kubeconfig" \
    --authentication-kubeconfig="$D/scheduler.kubeconfig" --authorization-kubeconfig="$D/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --port=0 --leader-elect=false --v=1
  # The default ServiceAccount is the controller-manager's first sign of life that pods need.
  wait_for 90 "the default ServiceAccount" kubectl --kubeconfig "$D/admin.kubeconfig" get serviceaccount default
}

# --- images -----------------------------------------------------------------------------------
# No registry here: images are OCI layouts built with umoci from files on this host and
# imported into each node's containerd. The pause image is a static binary that sleeps.
PAUSE_IMAGE=localhost/pause:dev
build_pause_image() {
  local out=$D/images/pause.tar tmp
  [ -f "$out" ] && return 0
  mkdir -p "$D/images"; tmp=$(mktemp -d)
  printf '#include <signal.h>\n#include <unistd.h>\nstatic void q(int s){(void)s;_exit(0);}\nint main(void){signal(SIGTERM,q);signal(SIGINT,q);for(;;)pause();}\n' >"$tmp/pause.c"
  gcc -static -O2 -o "$tmp/pause" "$tmp/pause.c"
  "$ROOT/scripts/oci-image.sh" "$out" --entrypoint /pause --file "$tmp/pause:/pause"
  rm -rf "$tmp"
}
load_image() {  # NODE TAR BASENAME
  ctr -a "$D/nodes/$1/containerd.sock" -n k8s.io images import --base-name "$3" "$2" >/dev/null
}

# --- nodes ------------------------------------------------------------------------------------
node_index() { local i=0 n; for n in $ALL_NODES; do [ "$n" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; die "unknown node $1"; }
node_devices() { case $1 in tf-gpu-0) echo "$GPU0_DEVICES" ;; tf-gpu-1) echo "$GPU1_DEVICES" ;; *) echo "" ;; esac; }
cgroup_hierarchies() { for h in /sys/fs/cgroup/*/; do h=${h%/}; [ -f "$h/cgroup.procs" ] && echo "$h"; done; }
node_ready() { kubectl --kubeconfig "$D/admin.kubeconfig" get node "$1" \
  -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True; }

node_up() {
  local n=$1 i ip nd kport hport devs labels
  i=$(node_index "$n"); ip=$(cat "$D/host-ip"); nd=$D/nodes/$n
  kport=$((B + 10 + 4 * i)); hport=$((B + 11 + 4 * i))
  devs=$(node_devices "$n")
  mkdir -p "$nd"/{containerd/root,containerd/state,cni,cni-ipam,var-lib-kubelet,var-log-pods,var-log-containers,run-tf,etc-tf}
  # A GPU node's soft GPUs: the soft GPU's configuration file at /etc/tensor-fusion/softgpu.json
  # in the node's view (pods mount it and set TF_SOFTGPU_CONFIG); a CPU node has none.
  if [ -n "$devs" ]; then
    echo "{\"node\": \"$n\", \"devices\": $devs}" >"$nd/etc-tf/softgpu.json"
  else rm -f "$nd/etc-tf/softgpu.json"; fi

  cat >"$nd/containerd.toml" <<TOML
version = 2
root = "$nd/containerd/root"
state = "$nd/containerd/state"
[grpc]
  address = "$nd/containerd.sock"
[ttrpc]
  address = "$nd/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$nd/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
TOML
  cat >"$nd/cni/10-bridge.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "tf-$n", "plugins": [
  {"type": "bridge", "bridge": "tfbr$i", "isGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "dataDir": "$nd/cni-ipam",
            "ranges": [[{"subnet": "10.244.$i.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
  ca node-ca tensor-fusion-test-node-ca >/dev/null
  cert "kubelet-$n" "system:node:$n" system:nodes "" ca
  cert "kubelet-serving-$n" "system:node:$n" system:nodes "IP:$ip,DNS:$n" ca
  kubeconfig "$nd/kubelet.kubeconfig" "kubelet-$n" "https://127.0.0.1:$API_PORT"
  cat >"$nd/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
port: $kport
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $hport
cgroupDriver: cgroupfs
cgroupRoot: /tf-$n
cgroupsPerQOS: true
failSwapOn: false
nodeStatusUpdateFrequency: 1s
nodeStatusReportFrequency: 10s
syncFrequency: 5s
fileCheckFrequency: 5s
tlsCertFile: $D/pki/kubelet-serving-$n.crt
tlsPrivateKeyFile: $D/pki/kubelet-serving-$n.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $D/pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
YAML
  # The cgroup root must exist in every hierarchy; a new cpuset is empty until given its parent's.
  local h
  for h in $(cgroup_hierarchies); do
    mkdir -p "$h/tf-$n"
    if [ -f "$h/cpuset.cpus" ]; then
      cat "$h/cpuset.cpus" >"$h/tf-$n/cpuset.cpus"; cat "$h/cpuset.mems" >"$h/tf-$n/cpuset.mems"
    fi
  done
  mkdir -p /var/lib/kubelet /var/log/pods /var/log/containers /run/tensor-fusion /etc/tensor-fusion /run/containerd
  labels="tensor-fusion.ai/test-node=$n"
  [ -n "$devs" ] && labels+=",nvidia.com/gpu.present=true"
  cat >"$nd/run.sh" <<RUN
#!/usr/bin/env bash
# Runs inside this node's private mount namespace: its own view of the paths kubelet hard-codes.
set -e
mount --make-rslave /
mount --bind "$nd/var-lib-kubelet" /var/lib/kubelet
mount --make-rshared /var/lib/kubelet
mount --bind "$nd/var-log-pods" /var/log/pods
mount --bind "$nd/var-log-containers" /var/log/containers
mount --bind "$nd/run-tf" /run/tensor-fusion
mount --bind "$nd/etc-tf" /etc/tensor-fusion
containerd --config "$nd/containerd.toml" >>"$D/logs/containerd-$n.log" 2>&1 &
for _ in \$(seq 100); do [ -S "$nd/containerd.sock" ] && break; sleep 0.1; done
ctr -a "$nd/containerd.sock" -n k8s.io images import --base-name localhost/pause "$D/images/pause.tar" >/dev/null
for img in "$D"/images/load/*.tar; do
  [ -f "\$img" ] && ctr -a "$nd/containerd.sock" -n k8s.io images import --base-name "localhost/\$(basename "\$img" .tar)" "\$img" >/dev/null
done
exec "$K8S_BIN/kubelet" --kubeconfig="$nd/kubelet.kubeconfig" --config="$nd/kubelet.yaml" \
  --container-runtime=remote --container-runtime-endpoint="unix://$nd/containerd.sock" \
  --pod-infra-container-image="$PAUSE_IMAGE" --runtime-request-timeout=2m \
  --hostname-override="$n" --node-ip="$ip" --node-labels="$labels" \
  --oom-score-adj=0 --v=1
RUN
  chmod +x "$nd/run.sh"
  daemon_alive "node-$n" || start_daemon "node-$n" unshare --mount --propagation slave "$nd/run.sh"
}

# Everything a node started, however it ended: pods' processes (found through the node's cgroups),
# shims, containerd, kubelet; then cgroups, netns, bridges and the node's files.
node_down() {
  local n=$1 nd=$D/nodes/$1 h i pid
  i=$(node_index "$n")
  stop_daemon "node-$n" 5
  pkill -KILL -f "containerd-shim.*$nd/containerd.sock" 2>/dev/null || true
  pkill -KILL -f "containerd --config $nd/containerd.toml" 2>/dev/null || true
  for _ in 1 2 3; do
    for h in $(cgroup_hierarchies); do
      [ -d "$h/tf-$n" ] || continue
      find "$h/tf-$n" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
    done
    sleep 0.2
  done
  for h in $(cgroup_hierarchies); do
    [ -d "$h/tf-$n" ] && find "$h/tf-$n" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  ip link del "tfbr$i" 2>/dev/null || true
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-' || true); do
    ip netns pids "$ns" 2>/dev/null | grep -q . || ip netns del "$ns" 2>/dev/null || true
  done
  # containerd's overlay mounts live in the node's namespace, gone with it; kubelet's too.
  rm -rf "$nd" 2>/dev/null || { sleep 1; rm -rf "$nd" || log "could not remove $nd"; }
}

# --- kube-proxy (one for the host: every node shares its network namespace) -----------------------
proxy_up() {
  daemon_alive kube-proxy && return 0
  start_daemon kube-proxy "$K8S_BIN/kube-proxy" --kubeconfig="$D/kube-proxy.kubeconfig" \
    --proxy-mode=iptables --cluster-cidr=10.244.0.0/16 --hostname-override="$(echo $ALL_NODES | cut -d' ' -f1)" \
    --healthz-bind-address="127.0.0.1:$PROXY_HEALTH" --metrics-bind-address="127.0.0.1:$PROXY_METRICS" \
    --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 --v=1
}

# --- the tensor-fusion-scheduler profile (deploy/scheduler/kube-scheduler-config.yaml) ------------
# A second kube-scheduler on the host, like the first, whose extender is the leading
# controller: reached at the Service's ClusterIP through kube-proxy (pods' IPs change with the
# leader; the Service follows the leader's label).
scheduler_up() {
  k8s_bin
  local url=${TF_EXTENDER_URL:-} ip
  if [ -z "$url" ]; then
    ip=$(kubectl --kubeconfig "$D/admin.kubeconfig" -n tensor-fusion-sys get service tensor-fusion-scheduler-extender \
      -o 'jsonpath={.spec.clusterIP}') || die "no Service tensor-fusion-scheduler-extender (apply deploy/ first)"
    url=http://$ip:8090
  fi
  sed -e "s#@KUBECONFIG@#$D/scheduler.kubeconfig#" -e "s#@EXTENDER_URL@#$url#" \
    "$ROOT/deploy/scheduler/kube-scheduler-config.yaml" >"$D/tf-scheduler.yaml"
  daemon_alive tf-scheduler || start_supervised tf-scheduler "$K8S_BIN/kube-scheduler" --config="$D/tf-scheduler.yaml" \
    --authentication-kubeconfig="$D/scheduler.kubeconfig" --authorization-kubeconfig="$D/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$TF_SCHED_PORT" --port=0 --v=1
  wait_for 60 "tensor-fusion-scheduler" curl -sfk "https://127.0.0.1:$TF_SCHED_PORT/healthz"
}

# --- commands ---------------------------------------------------------------------------------
cmd_up() {
  local only=0 nodes=$ALL_NODES n
  while (($#)); do
    case $1 in
      --control-plane-only) only=1 ;;
      --nodes) nodes=$2; shift ;;
      *) die "unknown option $1" ;;
    esac
    shift
  done
  mkdir -p "$D"
  k8s_bin
  local t0=$SECONDS
  control_plane_up "$only"
  if [ "$only" = 0 ]; then
    build_pause_image
    sysctl -qw net.ipv4.ip_forward=1
    proxy_up
    for n in $nodes; do node_up "$n"; done
    for n in $nodes; do wait_for 120 "node $n" node_ready "$n"; done
  fi
  log "up in $((SECONDS - t0))s; export KUBECONFIG=$D/admin.kubeconfig"
}

cmd_down() {
  local n
  [ -d "$D" ] || return 0
  for n in $ALL_NODES; do [ -d "$D/nodes/$n" ] && node_down "$n"; done
  if daemon_alive kube-proxy; then
    stop_daemon kube-proxy 5
    [ -n "${K8S_BIN:-}" ] || K8S_BIN=$("$ROOT/scripts/k8s-build.sh" 2>/dev/null || true)
    [ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  for p in tf-scheduler kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_daemon "$p" 10; done
  # What kubelets, kube-proxy and the CNI plugins left in iptables (KUBE-* and CNI-* chains and
  # every rule that names them); the rest of the host's rules stay as they were.
  if [ -d "$D/nodes" ] && command -v iptables-save >/dev/null; then
    for t in nat filter mangle; do
      iptables-save -t "$t" | grep -v -E -- '(KUBE-|CNI-)' | iptables-restore -T "$t" 2>/dev/null || true
    done
  fi
  # Host paths the nodes' namespaces mounted over stay as empty directories; remove them. Only
  # a cluster that had nodes made them: a control plane alone (--control-plane-only, another
  # dir and port base beside a full cluster) must not remove the paths the other cluster's
  # nodes mount over (rmdir of a mount point detaches it in every namespace).
  if [ -d "$D/nodes" ]; then
    rmdir /var/lib/kubelet /var/log/pods /var/log/containers /run/tensor-fusion /etc/tensor-fusion 2>/dev/null || true
  fi
  rm -rf "$D"
  log "down"
}

cmd_status() {
  local p
  for p in etcd kube-apiserver kube-controller-manager kube-scheduler tf-scheduler kube-proxy $(for n in $ALL_NODES; do echo "node-$n"; done); do
    if daemon_alive "$p"; then echo "$p running (pid $(cat "$D/pids/$p"))"; elif [ -f "$D/pids/$p" ]; then echo "$p DEAD"; fi
  done
  [ -f "$D/admin.kubeconfig" ] && kubectl --kubeconfig "$D/admin.kubeconfig" get nodes -o wide 2>/dev/null || true
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) echo "export KUBECONFIG=$D/admin.kubeconfig" ;;
  scheduler-up) scheduler_up ;;
  restart-apiserver)
    k8s_bin; stop_daemon kube-apiserver 10
    if [ "$(cat "$D/host-ip")" = 127.0.0.1 ]; then start_apiserver 127.0.0.1 127.0.0.1; else start_apiserver "$(cat "$D/host-ip")" 0.0.0.0; fi ;;
  load-image)
    [ $# -eq 3 ] || die "usage: cluster.sh load-image NAME TAR"
    mkdir -p "$D/images/load"; cp "$3" "$D/images/load/$2.tar"
    for n in $ALL_NODES; do daemon_alive "node-$n" && load_image "$n" "$3" "localhost/$2"; done; true ;;
  *) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
