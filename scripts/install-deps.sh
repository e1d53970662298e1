#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need. Idempotent; safe to run again.
set -euo pipefail
PKGS=(cmake ninja-build g++ pkg-config python3
      libgtest-dev libgmock-dev libbenchmark-dev
      libzstd-dev liblz4-dev nlohmann-json3-dev libcli11-dev libfmt-dev
      libcpp-httplib-dev libssl-dev rsync ccache python3-yaml
      libcurl4-openssl-dev libyaml-cpp-dev libsimdjson-dev
      # the portal: Beast + Asio (header-only) for HTTPS and WebSocket, SQLite for storage
      libboost-dev libsqlite3-dev
      # the console's browser tests: headless Chromium over WebDriver, driven by node
      chromium chromium-driver nodejs
      # the local Kubernetes cluster (scripts/cluster.sh); its binaries come from k8s-build.sh
      etcd-server containerd runc containernetworking-plugins umoci iptables busybox-static
      file curl openssl iproute2)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "install-deps: the CUDA toolkit is expected at /usr/local/cuda (nvcc, cudart, cuda.h)" >&2
  exit 1
fi
