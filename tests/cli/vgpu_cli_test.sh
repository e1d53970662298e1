#!/usr/bin/env bash
# `tensor-fusion vgpu create|show|delete` as users type them: options after the subcommand
# (`vgpu create NAME --dir D`) and before it (`vgpu --dir D show NAME`) both work, and a
# misspelt option is still refused.
#
#   vgpu_cli_test.sh TENSOR_FUSION_BINARY
set -u
tf=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$tf" vgpu create train --vram 1GiB --compute 30% --dir "$dir" 2>&1) || fail "create with --dir after the subcommand: $out"
[ "$out" = "$dir/tf-vgpu-train" ] || fail "create printed '$out', not $dir/tf-vgpu-train"
[ -f "$dir/tf-vgpu-train" ] || fail "no region file in $dir"

out=$("$tf" vgpu --dir "$dir" show train 2>&1) || fail "show with --dir before the subcommand: $out"
echo "$out" | grep -q "compute limit 30.0%, GPU time 0.000 s, throttled 0.000 s" || fail "show: $out"
out=$("$tf" vgpu show train --dir "$dir" 2>&1) || fail "show with --dir after the subcommand: $out"
echo "$out" | grep -q "vGPU train ($dir/tf-vgpu-train)" || fail "show: $out"

out=$("$tf" vgpu create train --vram 1GiB --dir "$dir" 2>&1) && fail "a second create of the same vGPU succeeded: $out"
out=$("$tf" vgpu create other --vram 1GiB --dirr "$dir" 2>&1) && fail "a misspelt option was accepted: $out"
echo "$out" | grep -q -- "--dirr" || fail "the refusal does not name the option: $out"

"$tf" vgpu delete train --dir "$dir" || fail "delete with --dir after the subcommand"
[ ! -e "$dir/tf-vgpu-train" ] || fail "delete left the region behind"
echo "vgpu cli: ok"
