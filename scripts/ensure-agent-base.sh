#!/usr/bin/env bash
# The Debian image the agent-container tests build kinfra's agent image on.
# No container registry is reachable on these machines, so it is made here:
# debootstrap (minbase, bookworm, Debian's default mirror), then docker
# import. Idempotent: nothing is done while the tag exists (~40 s otherwise).
set -euo pipefail

TAG="${1:-kinfra-test/debian:bookworm-minbase}"
log() { printf 'ensure-agent-base: %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if docker image inspect "$TAG" >/dev/null 2>&1; then
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
  log "installing debootstrap"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
work=$(mktemp -d)
trap '$SUDO rm -rf "$work"' EXIT
log "debootstrap --variant=minbase bookworm (about 30 s)"
for attempt in 1 2 3; do
  if $SUDO env PATH="$PATH:/usr/sbin:/sbin" debootstrap --variant=minbase bookworm "$work/root" >"$work/log" 2>&1; then
    break
  fi
  log "attempt $attempt failed: $(tail -n 3 "$work/log" | tr '\n' ' ')"
  [ "$attempt" -eq 3 ] && exit 1
  $SUDO rm -rf "$work/root"
  sleep $((attempt * 3))
done
$SUDO tar -C "$work/root" -c . | docker import - "$TAG" >/dev/null
log "ready: $TAG"
