#!/bin/sh
# Every command kinfra runs in the agent container starts through this: it
# waits until the entrypoint has set up the user and the volumes (only a
# fresh container makes it wait), records its pid in $KINFRA_AGENT_PIDFILE
# when asked (docker exec makes it the leader of its own process group, so
# kinfra can stop the command and all it started from outside), then becomes
# the command.
i=0
while [ ! -e /run/kinfra-agent-ready ]; do
  i=$((i + 1))
  if [ "$i" -gt 600 ]; then
    echo "kinfra: the agent container did not finish starting (see docker logs)" >&2
    exit 125
  fi
  sleep 0.05
done
if [ -n "${KINFRA_AGENT_PIDFILE:-}" ]; then
  mkdir -p "$(dirname "$KINFRA_AGENT_PIDFILE")"
  echo $$ > "$KINFRA_AGENT_PIDFILE"  # kept in the environment: kinfra-agent-stop checks it
fi
exec "$@"
