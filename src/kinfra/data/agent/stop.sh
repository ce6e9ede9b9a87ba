#!/bin/sh
# Stop what kinfra-agent-exec started with KINFRA_AGENT_PIDFILE=FILE: the
# process group whose leader's pid FILE holds, but only while a process of
# that group still carries the same KINFRA_AGENT_PIDFILE (a pid can be reused).
#
#   kinfra-agent-stop FILE SIGNAL         deliver SIGNAL once; exit 3 when nothing is left
#   kinfra-agent-stop FILE --staged SECS  INT, TERM, KILL, SECS seconds each (a run's leftovers)
f=$1
pid=$(cat "$f" 2>/dev/null)
[ -n "$pid" ] || exit 3

ours() {
  for d in /proc/[0-9]*; do
    # After "(comm) ": state ppid pgrp ...
    pgrp=$(sed 's/.*) //' "$d/stat" 2>/dev/null | cut -d' ' -f3)
    [ "$pgrp" = "$pid" ] || continue
    tr '\0' '\n' < "$d/environ" 2>/dev/null | grep -qx "KINFRA_AGENT_PIDFILE=$f" && return 0
  done
  return 1
}

if [ "$2" != "--staged" ]; then
  ours || exit 3
  kill -s "$2" -- "-$pid" 2>/dev/null || exit 3
  exit 0
fi
grace=${3:-5}
if ours; then
  for sig in INT TERM KILL; do
    kill -s "$sig" -- "-$pid" 2>/dev/null || break
    i=0
    while [ "$i" -lt $((grace * 10)) ] && ours; do sleep 0.1; i=$((i + 1)); done
    ours || break
  done
fi
rm -f "$f"
