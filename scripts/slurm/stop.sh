#!/usr/bin/env bash
# Stop the test cluster that start.sh started (slurmd, slurmctld, slurmdbd, by their pid files),
# cancelling its jobs first. munged and MariaDB are left running (other tools may use them).
set -uo pipefail
[ "$(id -u)" = 0 ] || { echo "slurm/stop.sh: needs root" >&2; exit 77; }
command -v scancel >/dev/null 2>&1 && scancel --full --signal=KILL --state=RUNNING --user=root >/dev/null 2>&1
command -v scancel >/dev/null 2>&1 && scancel --state=PENDING --user=root >/dev/null 2>&1
for daemon in slurmd slurmctld slurmdbd; do
  pid=/run/$daemon.pid
  if [ -s "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null; then
    kill "$(cat "$pid")"
    for _ in $(seq 50); do kill -0 "$(cat "$pid" 2>/dev/null || echo 0)" 2>/dev/null || break; sleep 0.2; done
  fi
done
echo "slurm/stop.sh: stopped" >&2
