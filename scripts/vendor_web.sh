#!/usr/bin/env bash
# `make vendor-web`: fetch the dashboard's two JavaScript libraries from the npm registry at their pinned
# versions (`npm pack`), check each tarball and each file taken from it against vendor/web.sha256, and put
# them where they are committed. The files are committed, so tests and images never need npm; this
# script is how they were made and how anyone re-checks them. Any mismatch fails and changes nothing.
#   uPlot    → services/query/src/p1_query/web/vendor/uplot-<ver>/  (served to users)
#   axe-core → tests/web/vendor/axe-core-<ver>/                       (accessibility tests only, never served)
set -euo pipefail
cd "$(dirname "$0")/.."
UPLOT=1.6.32
AXE=4.14.1
SUMS=vendor/web.sha256
UPLOT_DIR=services/query/src/p1_query/web/vendor/uplot-$UPLOT
AXE_DIR=tests/web/vendor/axe-core-$AXE

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$UPLOT" "axe-core@$AXE" >/dev/null)
# The tarballs first: a registry that serves other bytes for a pinned version is refused here.
(cd "$work" && grep -E '  (uplot|axe-core)-[0-9.]+\.tgz$' "$OLDPWD/$SUMS" | sha256sum --check --quiet) \
  || { echo "vendor-web: a tarball differs from $SUMS" >&2; exit 1; }
mkdir -p "$work/uplot" "$work/axe"
tar -xzf "$work/uplot-$UPLOT.tgz" -C "$work/uplot"
tar -xzf "$work/axe-core-$AXE.tgz" -C "$work/axe"
stage=$work/stage
mkdir -p "$stage/$UPLOT_DIR" "$stage/$AXE_DIR"
cp "$work/uplot/package/dist/uPlot.esm.js" "$work/uplot/package/dist/uPlot.min.css" \
   "$work/uplot/package/LICENSE" "$stage/$UPLOT_DIR/"
cp "$work/axe/package/axe.min.js" "$work/axe/package/LICENSE" "$stage/$AXE_DIR/"
(cd "$stage" && grep -vE '\.tgz$' "$OLDPWD/$SUMS" | sha256sum --check --quiet) \
  || { echo "vendor-web: an extracted file differs from $SUMS" >&2; exit 1; }
for dir in "$UPLOT_DIR" "$AXE_DIR"; do
  mkdir -p "$dir"
  cp "$stage/$dir"/* "$dir/"
done
echo "vendor-web: uPlot $UPLOT and axe-core $AXE fetched and verified against $SUMS"
