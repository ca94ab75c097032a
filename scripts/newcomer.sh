#!/usr/bin/env bash
# A newcomer's first `make serve`, measured: a fresh clone of this repository's HEAD in a
# temporary folder, with ../shared beside it (`with`) or not (`without`), its own BentoML home;
# prints the seconds to /readyz (or to make's failure), the .venv's size, and how many packages
# pip installed, and from where.
#   scripts/newcomer.sh with|without [PORT]
set -euo pipefail
mode=$1 port=${2:-3300}
here=$(cd "$(dirname "$0")/.." && pwd)
top=$(mktemp -d)
git clone -q "$here" "$top/main"
[ "$mode" = with ] && ln -s "$(realpath "$here/../shared")" "$top/shared"
cd "$top/main"
export BENTOML_HOME=$top/bentoml
report=$top/pip-report.json
start=$(date +%s)
make serve PORT="$port" PIP=".venv/bin/pip install --disable-pip-version-check -q --report $report" >"$top/serve.log" 2>&1 &
make_pid=$!
outcome=failed
while kill -0 "$make_pid" 2>/dev/null; do
  if curl -sf "localhost:$port/readyz" >/dev/null; then outcome=ready; break; fi
  sleep 2
done
echo "$mode ../shared: $outcome after $(( $(date +%s) - start )) s; .venv $(du -sh .venv | cut -f1)"
python3 - "$report" <<'PY'
import json, sys
installed = json.load(open(sys.argv[1]))["install"]
local = sum(item["download_info"]["url"].startswith("file:") for item in installed)
print(f"pip installed {len(installed)} packages: {len(installed) - local} from PyPI, {local} from local wheel folders")
PY
[ "$outcome" = ready ] || grep -v "^WARNING: Location" "$top/serve.log" | tail -n 3
pkill -f -- "--port $port" || true
sleep 3
rm -rf "$top"
