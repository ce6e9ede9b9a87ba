#!/usr/bin/env bash
# The demo: the whole journey on the bundled shop example, offline and with no
# API key. A throwaway copy of examples/shop (with a bare origin) gets a slot;
# `kinfra impl` makes the milestone's worktree with its own running stack; the
# real `claude` CLI (the pinned npm release), driven by `kinfra orch run`, does
# the milestone's two tasks in that worktree, its model being the scripted mock
# of kinfra.testing.model_server on 127.0.0.1 (examples/scenarios/banner-M1.json);
# the stack serves what the agent wrote; `worktrees`, `orch status`, `orch
# costs`; then the branch is pushed and `kinfra done` takes it all back down.
# Leaves nothing behind. With a real model: see "The orchestrator" in README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null 2>&1 || bash scripts/setup.sh
here=$(pwd)
work=$(mktemp -d)
export KINFRA_HOME="$work/kinfra-home"
kinfra="$here/.venv/bin/kinfra"
python="$here/.venv/bin/python"
plan=docs/designs/banner/implementation/M1_banner.md
mock_pid=""
cleanup() {
  if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null || true; fi
  (cd "$work/shop" 2>/dev/null && "$kinfra" sandbox down --slot 1 --volumes >/dev/null 2>&1 || true)
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
git_q() { git -c user.name=demo -c user.email=demo@kinfra.invalid "$@"; }

git init -q --bare -b main "$work/shop-origin.git"
cp -r examples/shop "$work/shop"
cd "$work/shop"
git init -q -b main
git add -A
git_q commit -q -m "shop example"
git remote add origin "$work/shop-origin.git"
git push -q -u origin main

say kinfra sandbox provision --count 1
"$kinfra" sandbox provision --count 1
say kinfra impl banner/M1
"$kinfra" impl banner/M1
cd ../shop-impl-banner-M1

# The model: a scripted mock on 127.0.0.1, and claude pointed at it (and at
# nothing else: no telemetry, no update check, the mock as its HTTPS proxy).
say "python -m kinfra.testing.model_server --scenario examples/scenarios/banner-M1.json &"
"$python" -m kinfra.testing.model_server --scenario "$here/examples/scenarios/banner-M1.json" \
  --record "$work/model-requests.jsonl" >"$work/model-server.url" &
mock_pid=$!
for _ in $(seq 100); do [ -s "$work/model-server.url" ] && break; sleep 0.05; done
url=$(head -n1 "$work/model-server.url")
echo "$url"
eval "$("$python" -m kinfra.testing.agents claude-env "$url")"
say claude --version
claude --version

say kinfra orch run $plan
"$kinfra" orch run $plan
eval "$("$kinfra" env)"
say "wget -qO- \$API_URL/app/banner.html   # $API_URL: this worktree's slot serves the agent's work"
wget -qO- "$API_URL/app/banner.html" 2>/dev/null || curl -s "$API_URL/app/banner.html"
say git log --oneline -3
git log --oneline -3
say kinfra worktrees
"$kinfra" worktrees
say kinfra orch status $plan
"$kinfra" orch status $plan
say kinfra orch costs
"$kinfra" orch costs
say git push -q -u origin impl/banner-M1
git push -q -u origin impl/banner-M1
cd ../shop
say kinfra done banner-M1
"$kinfra" done banner-M1
say kinfra sandbox slots
"$kinfra" sandbox slots
# The proof that claude talked to nothing else: its HTTPS proxy was the mock, which refuses tunnels.
"$python" - "$work/model-requests.jsonl" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
stray = [r["method"] + " " + r["path"] for r in rows if r["api"] is None]
print(f"\nthe mock model server saw {len(rows) - len(stray)} model requests and {len(stray)} others", *stray)
EOF
