#!/usr/bin/env bash
# The demo: the bundled example app in a throwaway git repository, two slots
# provisioned and started side by side on their own ports, both shown
# healthy with their URLs, then stopped. Leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null 2>&1 || bash scripts/setup.sh
here=$(pwd)
work=$(mktemp -d)
export KINFRA_HOME="$work/kinfra-home"
kinfra="$here/.venv/bin/kinfra"
cleanup() {
  (cd "$work/shop" 2>/dev/null && for n in 1 2; do "$kinfra" sandbox down --slot "$n" --volumes >/dev/null 2>&1 || true; done)
  rm -rf "$work"
}
trap cleanup EXIT

cp -r examples/shop "$work/shop"
cd "$work/shop"
git init -q -b main
git add -A
git -c user.name=demo -c user.email=demo@kinfra.invalid commit -q -m "shop example"
echo "hello from slot 1" > app/slot.txt  # slot 1 serves this checkout's code

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
say kinfra sandbox provision --count 2
"$kinfra" sandbox provision --count 2
say kinfra sandbox up --slot 1
"$kinfra" sandbox up --slot 1
mkdir -p "$work/other/app" && echo "hello from slot 2" > "$work/other/app/slot.txt"
say kinfra sandbox up --slot 2 --code-dir "$work/other"
"$kinfra" sandbox up --slot 2 --code-dir "$work/other"
say kinfra sandbox slots
"$kinfra" sandbox slots
for n in 1 2; do
  port=$((8000 + n))
  say "wget -qO- http://localhost:$port/app/slot.txt"
  wget -qO- "http://localhost:$port/app/slot.txt" 2>/dev/null || curl -s "http://localhost:$port/app/slot.txt"
done
say kinfra sandbox down --slot 1 --volumes
"$kinfra" sandbox down --slot 1 --volumes
say kinfra sandbox down --slot 2 --volumes
"$kinfra" sandbox down --slot 2 --volumes
say kinfra sandbox slots
"$kinfra" sandbox slots
