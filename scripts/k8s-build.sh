#!/usr/bin/env bash
# Builds the Kubernetes binaries the local cluster runs (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy) from Debian's `kubernetes` source package, once, into a cache outside
# the checkout keyed by version. Later runs find them and return at once. Prints the directory.
#
#   scripts/k8s-build.sh            # build if missing; prints the bin directory on stdout
#   TF_K8S_CACHE=/some/dir scripts/k8s-build.sh
#
# Pitfalls handled (../shared/reference/kubernetes.md): the vendored modern-go/reflect2 v1.0.1
# crashes under Go >= 1.18, so it is replaced by Debian's 1.0.2; Debian's kubectl 1.20 has the
# same fault, so the cluster uses the machine's kubectl.
set -euo pipefail
K8S_VERSION=1.20.2
CACHE=${TF_K8S_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/tensor-fusion/kubernetes-$K8S_VERSION}
BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

have_all() { for b in "${BINS[@]}"; do [ -x "$CACHE/bin/$b" ] || return 1; done; }
if have_all; then echo "$CACHE/bin"; exit 0; fi

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
log() { echo "k8s-build: $*" >&2; }

# Source lines for the suites the binary lines already name.
if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
  log "adding deb-src lines"
  $SUDO tee /etc/apt/sources.list.d/tensor-fusion-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  golang-1.19-go golang-github-modern-go-reflect2-dev rsync dpkg-dev make >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/k8s-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "fetching the source package into $work"
(cd "$work" && apt-get source -qq --download-only kubernetes >&2 && dpkg-source -x --no-check ./kubernetes_*.dsc src >&2)
src="$work/src"
grep -q "gitVersion.*v$K8S_VERSION\|$K8S_VERSION" "$src/debian/changelog" || log "warning: changelog does not name $K8S_VERSION"

log "swapping vendored reflect2 for Debian's"
rm -rf "$src/vendor/github.com/modern-go/reflect2"
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$src/vendor/github.com/modern-go/reflect2"

export PATH=/usr/lib/go-1.19/bin:$PATH GOFLAGS=-mod=vendor GO111MODULE=on
export KUBE_GIT_VERSION="v$K8S_VERSION" KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=debian
targets=""; for b in "${BINS[@]}"; do targets+="cmd/$b "; done
log "building $targets(about 18 minutes on 2 cores)"
(cd "$src" && make WHAT="$targets" >&2)
mkdir -p "$CACHE/bin.tmp"
for b in "${BINS[@]}"; do cp "$src/_output/bin/$b" "$CACHE/bin.tmp/$b"; done
rm -rf "$CACHE/bin" && mv "$CACHE/bin.tmp" "$CACHE/bin"
have_all
log "cached in $CACHE/bin"
echo "$CACHE/bin"
