#!/usr/bin/env bash
# Bring up a Docker engine with Compose v2 and the local base image the tests
# and the demo need. Idempotent: each step is skipped when already satisfied.
# Debian 12 has no Compose v2 package, so that single package is taken from
# trixie (DESIGN §7); nothing else is upgraded from there.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# A package mirror can fail for a moment: try each apt step a few times, and
# show apt's own output when it still fails.
retry() {
  local out attempt
  for attempt in 1 2 3; do
    if out=$("$@" 2>&1); then return 0; fi
    log "attempt $attempt failed: $*"
    sleep $((attempt * 3))
  done
  printf '%s\n' "$out" >&2
  return 1
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    retry $SUDO apt-get update -qq
    apt_updated=1
  fi
  retry env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
command -v tmux >/dev/null 2>&1 || need_pkgs+=(tmux)
command -v git >/dev/null 2>&1 || need_pkgs+=(git)
# The deploy tests' second engine: a network namespace (ip, nsenter) and TLS (openssl).
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v nsenter >/dev/null 2>&1 || need_pkgs+=(util-linux)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
# ...and the registry a target may pull from (run by the tests, never as a service).
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  apt_install "${need_pkgs[@]}"
fi

if ! docker compose version >/dev/null 2>&1; then
  log "installing Compose v2 (docker-compose from Debian trixie)"
  tmp=$(mktemp -d)
  echo "deb http://deb.debian.org/debian trixie main" > "$tmp/trixie.list"
  mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
  opts=(-o "Dir::Etc::SourceList=$tmp/trixie.list" -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives")
  chmod 0755 "$tmp"  # apt's _apt user must be able to write there
  retry $SUDO apt-get "${opts[@]}" update -qq
  (cd "$tmp" && retry $SUDO apt-get "${opts[@]}" download docker-compose)
  deb=$(ls "$tmp"/docker-compose_*.deb | head -n1)
  # Unpack only the plugin binary: dpkg -i would pull trixie's dependency chain.
  mkdir -p "$tmp/x"
  dpkg-deb -x "$deb" "$tmp/x"
  plugin="$tmp/x/usr/libexec/docker/cli-plugins/docker-compose"
  for dir in /usr/libexec/docker/cli-plugins /usr/local/lib/docker/cli-plugins; do
    $SUDO mkdir -p "$dir"
    $SUDO install -m 0755 "$plugin" "$dir/docker-compose"
  done
  rm -rf "$tmp"
  docker compose version >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/kinfra-dockerd.log)"
  $SUDO sh -c 'nohup dockerd >/var/log/kinfra-dockerd.log 2>&1 &'
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/kinfra-dockerd.log"; exit 1; }
fi

if ! docker image inspect busybox:1.36 >/dev/null 2>&1; then
  log "building local image busybox:1.36 from /bin/busybox"
  ctx=$(mktemp -d)
  cp /bin/busybox "$ctx/busybox"
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\nCMD ["sh"]\n' > "$ctx/Dockerfile"
  docker build -q -t busybox:1.36 "$ctx" >/dev/null
  rm -rf "$ctx"
fi
log "ready: $(docker compose version --short 2>/dev/null || docker compose version)"
