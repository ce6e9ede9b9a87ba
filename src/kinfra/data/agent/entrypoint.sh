#!/bin/sh
# The agent container's start, as root: give the worktree owner's uid/gid
# (KINFRA_UID, KINFRA_GID) a user named agent, hand it the container's
# volumes, then run the main process as that user for good. Without
# KINFRA_UID (a plain `docker run IMAGE CMD`) the command runs as it is.
set -eu
if [ -z "${KINFRA_UID:-}" ]; then
  exec "$@"
fi
uid="$KINFRA_UID"
gid="${KINFRA_GID:?KINFRA_GID is not set}"
home="${HOME:-/home/agent}"
ready=/run/kinfra-agent-ready
rm -f "$ready"
shell=/bin/sh
[ -x /bin/bash ] && shell=/bin/bash

# An image user may already hold the uid (the node images' `node` is 1000):
# the agent entry replaces it, so that every tool sees one name for the uid.
if ! getent group "$gid" >/dev/null 2>&1; then
  echo "agent:x:$gid:" >> /etc/group
fi
awk -F: -v u="$uid" '$3 != u && $1 != "agent"' /etc/passwd > /etc/passwd.kinfra
echo "agent:x:$uid:$gid:kinfra agent:$home:$shell" >> /etc/passwd.kinfra
cat /etc/passwd.kinfra > /etc/passwd
rm -f /etc/passwd.kinfra

# Docker creates a new volume's mount point as root; a volume last used by
# another uid is handed over whole.
for dir in "$home" /logs $(echo "${KINFRA_KEEP:-}" | tr ':' ' '); do
  mkdir -p "$dir"
  if [ "$(stat -c %u:%g "$dir")" != "$uid:$gid" ]; then
    chown -R "$uid:$gid" "$dir"
  fi
done

# Commands exec'd into the container (kinfra-agent-exec) wait for this.
mkdir -p /run && touch "$ready"
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
