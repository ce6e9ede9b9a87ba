#!/usr/bin/env bash
# Install Debian's `prometheus` package for the tests that feed a real
# Prometheus with kinfra's telemetry and query every dashboard panel.
#
# The package's binary only: the .deb is downloaded with apt and unpacked into
# $KINFRA_PROMETHEUS_DIR (default /opt/kinfra-prometheus/prometheus-<version>,
# with bin/prometheus pointing at it), without its maintainer scripts, so no
# system service starts and nothing else on the machine changes. Each test
# starts its own Prometheus on a free port and stops it. Idempotent: a working
# install is kept.
#
#   scripts/ensure-prometheus.sh          # install when missing
#   scripts/ensure-prometheus.sh --print  # the binary's path
set -euo pipefail

log() { printf 'ensure-prometheus: %s\n' "$*" >&2; }
DIR=${KINFRA_PROMETHEUS_DIR:-/opt/kinfra-prometheus}
BIN="$DIR/bin/prometheus"
if [ "${1:-}" = "--print" ]; then
  printf '%s\n' "$BIN"
  exit 0
fi
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"  # apt's download user must be able to write here
for attempt in 1 2 3; do
  if (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 ||
        { $SUDO apt-get update -qq && apt-get download prometheus >/dev/null 2>&1; }; }); then
    break
  fi
  [ "$attempt" -lt 3 ] || { log "apt-get download prometheus failed"; exit 1; }
  sleep $((attempt * 3))
done
deb=$(ls "$tmp"/prometheus_*.deb)
version=$(dpkg-deb -f "$deb" Version)
dest="$DIR/prometheus-${version//[^A-Za-z0-9.+-]/_}"
log "unpacking Debian's prometheus $version into $dest"
dpkg-deb -x "$deb" "$tmp/root"
"$tmp/root/usr/bin/prometheus" --version >/dev/null
$SUDO mkdir -p "$dest" "$DIR/bin"
$SUDO cp "$tmp/root/usr/bin/prometheus" "$tmp/root/usr/bin/promtool" "$dest/"
$SUDO ln -sfn "$dest/prometheus" "$BIN"
log "ready: $("$BIN" --version 2>&1 | head -1)"
