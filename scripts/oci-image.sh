#!/usr/bin/env bash
# Builds an OCI image archive from files on this host (no registry, no Docker): ELF files bring
# the shared libraries they load (ldd), so a binary built here runs in the image as it does here.
#
#   scripts/oci-image.sh OUT.tar [--tag T] [--entrypoint PATH] [--env K=V]... [--file SRC:DEST]...
#                        [--dir SRC:DEST]... [--busybox]
# The archive's tag is T (default "dev"); import it with `ctr images import --base-name localhost/NAME OUT.tar`
# (scripts/cluster.sh load-image does that on every node).
set -euo pipefail
out=$1; shift
entry=() envs=() files=() dirs=() busybox=0 tag=dev
while (($#)); do
  case $1 in
    --tag) tag=$2; shift ;;
    --entrypoint) entry+=("$2"); shift ;;
    --env) envs+=("$2"); shift ;;
    --file) files+=("$2"); shift ;;
    --dir) dirs+=("$2"); shift ;;
    --busybox) busybox=1 ;;
    *) echo "oci-image: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
umoci init --layout "$tmp/oci" >/dev/null
umoci new --image "$tmp/oci:$tag" >/dev/null
umoci unpack --image "$tmp/oci:$tag" "$tmp/bundle" >/dev/null
rootfs=$tmp/bundle/rootfs
mkdir -p "$rootfs"/{tmp,etc,proc,sys,dev,run}
copy_with_libs() {  # SRC DEST
  mkdir -p "$(dirname "$rootfs$2")"; cp -aL "$1" "$rootfs$2"
  if file -L "$1" | grep -q ELF; then
    { ldd "$1" 2>/dev/null || true; } | awk '/=> \//{print $3} /^\t\//{print $1}' | while read -r lib; do
      [ -e "$rootfs$lib" ] && continue
      mkdir -p "$(dirname "$rootfs$lib")"; cp -aL "$lib" "$rootfs$lib"
    done
  fi
}
for f in "${files[@]}"; do copy_with_libs "${f%%:*}" "${f#*:}"; done
for d in "${dirs[@]}"; do
  src=${d%%:*} dst=${d#*:}; mkdir -p "$rootfs$dst"; cp -a "$src/." "$rootfs$dst/"
  find "$src" -type f | while read -r f; do file -L "$f" | grep -q ELF && copy_with_libs "$f" "$dst${f#"$src"}"; done
done
if [ "$busybox" = 1 ]; then
  mkdir -p "$rootfs/bin"; cp /bin/busybox "$rootfs/bin/busybox"
  for a in sh cat ls sleep echo env nc grep mkdir cp rm test true false; do ln -sf busybox "$rootfs/bin/$a"; done
fi
echo "root:x:0:0:root:/:/bin/sh" >"$rootfs/etc/passwd"; echo "root:x:0:" >"$rootfs/etc/group"
umoci repack --image "$tmp/oci:$tag" "$tmp/bundle" >/dev/null
cfg=(--config.workingdir / --config.env PATH=/bin:/usr/bin:/usr/local/bin)
for e in "${entry[@]}"; do cfg+=(--config.entrypoint "$e"); done
for e in "${envs[@]}"; do cfg+=(--config.env "$e"); done
umoci config --image "$tmp/oci:$tag" "${cfg[@]}" >/dev/null
umoci gc --layout "$tmp/oci" >/dev/null
tar -C "$tmp/oci" -cf "$out" .
