#!/usr/bin/env bash
# Install the pinned agent CLIs the real-agent tests and the demo run:
# @anthropic-ai/claude-code and @openai/codex, at the versions in
# src/kinfra/domain/agent_pins.py (the one place for the pins), each with npm
# into a folder of its own under $KINFRA_AGENTS_DIR (default
# /opt/kinfra-agents/<package>-<version>). Node.js and npm come from Debian
# when absent. Idempotent: a version already installed is kept as it is.
#
# Both CLIs are native binaries inside the npm packages (optional, per-platform
# dependencies), so nothing is downloaded when they run.
#
#   scripts/ensure-agents.sh          # install what is missing
#   scripts/ensure-agents.sh --print  # the two binaries' paths, one per line
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'ensure-agents: %s\n' "$*" >&2; }
AGENTS_DIR=${KINFRA_AGENTS_DIR:-/opt/kinfra-agents}
PINS=src/kinfra/domain/agent_pins.py

pin() {  # pin NAME -> the string assigned to NAME in agent_pins.py
  sed -n "s/^$1 = \"\\(.*\\)\"\$/\\1/p" "$PINS"
}
CLAUDE_PACKAGE=$(pin CLAUDE_CODE_PACKAGE)
CLAUDE_VERSION=$(pin CLAUDE_CODE_VERSION)
CODEX_PACKAGE=$(pin CODEX_PACKAGE)
CODEX_VERSION=$(pin CODEX_VERSION)
for value in "$CLAUDE_PACKAGE" "$CLAUDE_VERSION" "$CODEX_PACKAGE" "$CODEX_VERSION"; do
  if [ -z "$value" ]; then
    log "could not read the pins from $PINS"
    exit 1
  fi
done

folder() {  # folder PACKAGE VERSION -> $AGENTS_DIR/<name without scope>-<version>
  printf '%s/%s-%s' "$AGENTS_DIR" "${1##*/}" "$2"
}
CLAUDE_BIN="$(folder "$CLAUDE_PACKAGE" "$CLAUDE_VERSION")/node_modules/.bin/claude"
CODEX_BIN="$(folder "$CODEX_PACKAGE" "$CODEX_VERSION")/node_modules/.bin/codex"
if [ "${1:-}" = "--print" ]; then
  printf '%s\n%s\n' "$CLAUDE_BIN" "$CODEX_BIN"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "installing Node.js and npm from Debian"
  for attempt in 1 2 3; do
    if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      --no-install-recommends nodejs npm >/dev/null; then
      break
    fi
    [ "$attempt" -lt 3 ] || { log "apt-get install nodejs npm failed"; exit 1; }
    sleep $((attempt * 3))
  done
fi
# Behind a TLS-intercepting proxy node must trust the system bundle (where
# the proxy's CA is); harmless elsewhere.
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi

reports() {  # reports BINARY VERSION: the binary runs and says its version
  [ -x "$1" ] && "$1" --version 2>/dev/null | grep -qF "$2"
}

install_pinned() {  # install_pinned PACKAGE VERSION BINARY
  local package=$1 version=$2 binary=$3 dest tmp
  if reports "$binary" "$version"; then
    return 0
  fi
  dest=$(folder "$package" "$version")
  log "installing $package@$version into $dest"
  $SUDO mkdir -p "$AGENTS_DIR"
  # Into a temporary folder first: a half-done install is never taken for a cached one.
  tmp="$dest.partial.$$"
  $SUDO rm -rf "$tmp"
  $SUDO mkdir -p "$tmp"
  for attempt in 1 2 3; do
    if $SUDO env NODE_EXTRA_CA_CERTS="${NODE_EXTRA_CA_CERTS:-}" npm install --prefix "$tmp" \
      --no-save --no-audit --no-fund --loglevel=error "$package@$version" >&2; then
      break
    fi
    [ "$attempt" -lt 3 ] || { log "npm install $package@$version failed"; $SUDO rm -rf "$tmp"; exit 1; }
    sleep $((attempt * 3))
  done
  # Claude Code puts its native binary in place in a postinstall script; an
  # npm that skipped install scripts leaves a stub: run the script then.
  local stub="$tmp/node_modules/.bin/${binary##*/}"
  if ! reports "$stub" "$version" && [ -f "$tmp/node_modules/$package/install.cjs" ]; then
    (cd "$tmp/node_modules/$package" && $SUDO node install.cjs >&2)
  fi
  if ! reports "$stub" "$version"; then
    log "$package@$version installed but ${binary##*/} --version does not report $version"
    $SUDO rm -rf "$tmp"
    exit 1
  fi
  $SUDO rm -rf "$dest"
  $SUDO mv "$tmp" "$dest"
}

install_pinned "$CLAUDE_PACKAGE" "$CLAUDE_VERSION" "$CLAUDE_BIN"
install_pinned "$CODEX_PACKAGE" "$CODEX_VERSION" "$CODEX_BIN"
log "ready: $("$CLAUDE_BIN" --version), $("$CODEX_BIN" --version) (node $(node --version))"
