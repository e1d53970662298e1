#!/usr/bin/env bash
# Refreshes the console's third-party ES modules in src/portal/console/vendor/ from npm (the
# versions pinned in src/portal/console/package.json; MIT licensed, ~170 KiB in all, committed
# so that building and running need no network). Run by hand after bumping a version there;
# the build never fetches anything.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pin() { node -p "require('$root/src/portal/console/package.json').dependencies['$1']"; }
PREACT=$(pin preact) HTM=$(pin htm) UPLOT=$(pin uplot)
dest="$root/src/portal/console/vendor"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "preact@$PREACT" "htm@$HTM" "uplot@$UPLOT" >/dev/null)
for p in preact-$PREACT htm-$HTM uplot-$UPLOT; do mkdir -p "$tmp/$p"; tar xzf "$tmp/$p.tgz" -C "$tmp/$p"; done
mkdir -p "$dest"
cp "$tmp/preact-$PREACT/package/dist/preact.module.js" "$dest/preact.module.js"
# hooks imports the bare specifier "preact"; a browser without an import map (an inline script,
# which the Content-Security-Policy forbids) needs a relative URL.
sed 's/from"preact"/from".\/preact.module.js"/' "$tmp/preact-$PREACT/package/hooks/dist/hooks.module.js" > "$dest/hooks.module.js"
grep -q 'from"./preact.module.js"' "$dest/hooks.module.js" || { echo "vendor-console: hooks import not rewritten" >&2; exit 1; }
cp "$tmp/htm-$HTM/package/dist/htm.module.js" "$dest/htm.module.js"
cp "$tmp/uplot-$UPLOT/package/dist/uPlot.esm.js" "$dest/uPlot.esm.js"
cp "$tmp/uplot-$UPLOT/package/dist/uPlot.min.css" "$dest/uPlot.min.css"
{
  echo "Third-party files in this directory, from npm (scripts/vendor-console.sh):"
  echo "preact $PREACT (preact.module.js, hooks.module.js), htm $HTM (htm.module.js), uplot $UPLOT (uPlot.esm.js, uPlot.min.css)."
  for p in preact-$PREACT htm-$HTM uplot-$UPLOT; do
    echo; echo "==== ${p%-*} ===="; cat "$tmp/$p/package/LICENSE"*
  done
} > "$dest/LICENSES.txt"
echo "vendor-console: updated $dest"
