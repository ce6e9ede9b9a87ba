#!/bin/sh
# Every command kinfra runs in the agent container starts through this: it
# waits until the entrypoint has set up the user and the volumes (only a
# fresh container makes it wait), then becomes the command.
i=0
while [ ! -e /run/kinfra-agent-ready ]; do
  i=$((i + 1))
  if [ "$i" -gt 600 ]; then
    echo "kinfra: the agent container did not finish starting (see docker logs)" >&2
    exit 125
  fi
  sleep 0.05
done
exec "$@"
