#!/usr/bin/env bash
# Vendor the workbench's front-end libraries from the npm registry into the package, so
# that `pip install .` alone gives a working, offline workbench (no CDN, no build step on
# the user's machine). Run after changing package.json; commit the result.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent 2>/dev/null || npm install --no-audit --no-fund --silent
dest=../../flowgraph/web/static/vendor
mkdir -p "$dest"
cp node_modules/cytoscape/dist/cytoscape.min.js "$dest/cytoscape.min.js"
cp node_modules/cytoscape/LICENSE "$dest/cytoscape.LICENSE"
node -e 'const p=require("./node_modules/cytoscape/package.json");console.log(JSON.stringify({cytoscape:{version:p.version,license:p.license,file:"cytoscape.min.js",licence_file:"cytoscape.LICENSE"}},null,2))' > "$dest/VERSIONS.json"
sha256sum "$dest/cytoscape.min.js"
