#!/usr/bin/env bash
# A real one-node Slurm cluster on 127.0.0.1 for the tests (tests/cluster/) and for trying the
# README's Slurm command on one machine: Debian's slurm-wlm (slurmctld + slurmd), munge, and
# slurmdbd on the local MariaDB so that `sacct` (which submitit polls for job states) works.
#
# Idempotent: installs the packages when missing, writes the configs, starts only what is not
# running, and waits until `sinfo` shows the node idle. Needs root and apt-get. Stop: stop.sh.
#
# The node declares more CPUs and memory than the machine has (SlurmdParameters=config_overrides)
# so that 2-4 small workers run at once on 2 cores, and Gres=gpu:4 without device files so that
# `--gres=gpu:1` (one GPU per worker, as on a GPU cluster) is accepted where no GPU exists.
set -euo pipefail

NODE=${AQSVIT_SLURM_NODE:-aqsvit-node}
CPUS=${AQSVIT_SLURM_CPUS:-8}
MEM_MB=${AQSVIT_SLURM_MEM_MB:-16000}
GPUS=${AQSVIT_SLURM_GPUS:-4}
PARTITION=${AQSVIT_SLURM_PARTITION:-debug}
ETC=/etc/slurm
SPOOL=/var/spool/slurm-aqsvit
LOG=/var/log/slurm-aqsvit
HOST=$(hostname -s)

log() { echo "slurm/start.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "needs root (apt-get, munge key, daemons)"; exit 77; }

running() { pgrep -x "$1" >/dev/null 2>&1; }

# 1. packages
missing=()
for tool in slurmctld:slurm-wlm slurmd:slurm-wlm munged:munge slurmdbd:slurmdbd mariadbd:mariadb-server; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || { log "no apt-get to install ${missing[*]}"; exit 77; }
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

mkdir -p "$ETC" "$SPOOL/ctld" "$SPOOL/d" "$LOG"

# 2. munge: a key (kept once written), then the daemon
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key --force
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
if ! running munged; then
  runuser -u munge -- /usr/sbin/munged --force
fi
for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
munge -n | unmunge >/dev/null

# 3. accounting: slurmdbd on the local MariaDB (sacct is how submitit sees a job end without result)
if ! running mariadbd; then
  log "starting MariaDB"
  (service mariadb start || service mysql start) >/dev/null 2>&1 || true
  for _ in $(seq 100); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
fi
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'aqsvit-slurm-test';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

cat > "$ETC/slurmdbd.conf.new" <<EOF
# written by aqsvit scripts/slurm/start.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=aqsvit-slurm-test
StorageLoc=slurm_acct_db
EOF
install -m 600 "$ETC/slurmdbd.conf.new" "$ETC/slurmdbd.conf" && rm "$ETC/slurmdbd.conf.new"

# 4. slurm.conf: one node on 127.0.0.1, root runs the daemons, no cgroups (works in containers)
cat > "$ETC/slurm.conf.new" <<EOF
# written by aqsvit scripts/slurm/start.sh: a one-node test cluster on 127.0.0.1
ClusterName=aqsvit
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SlurmdParameters=config_overrides
GresTypes=gpu
JobRequeue=1
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$HOST CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:$GPUS State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
# stand-in device files (slurmd counts a GPU per File; there may be no GPU): Slurm hands them out
# one per `--gres=gpu:1` job and sets CUDA_VISIBLE_DEVICES to the file's number, as on a GPU node
mkdir -p "$SPOOL/gpu"
for i in $(seq 0 $((GPUS - 1))); do touch "$SPOOL/gpu/nvidia$i"; done
printf '# written by aqsvit scripts/slurm/start.sh\nNodeName=%s Name=gpu File=%s/gpu/nvidia[0-%s]\n' \
  "$NODE" "$SPOOL" $((GPUS - 1)) > "$ETC/gres.conf"
changed=1
if [ -f "$ETC/slurm.conf" ] && cmp -s "$ETC/slurm.conf.new" "$ETC/slurm.conf"; then changed=0; fi
mv "$ETC/slurm.conf.new" "$ETC/slurm.conf"

# 5. daemons: slurmdbd, the cluster in its database, slurmctld, slurmd (restarted if the config changed)
if [ "$changed" = 1 ]; then
  for daemon in slurmd slurmctld; do
    pid=/run/$daemon.pid
    if [ -s "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null; then
      log "config changed: restarting $daemon"; kill "$(cat "$pid")"
    fi
  done
  for _ in $(seq 50); do running slurmd || running slurmctld || break; sleep 0.2; done
fi
if ! running slurmdbd; then /usr/sbin/slurmdbd; fi
for _ in $(seq 100); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
if ! sacctmgr -n -P list cluster format=cluster | grep -qx aqsvit; then
  sacctmgr -i add cluster aqsvit >/dev/null
fi
if ! running slurmctld; then /usr/sbin/slurmctld; fi
if ! running slurmd; then /usr/sbin/slurmd -N "$NODE"; fi

# 6. wait for the node: idle (or already running jobs); resume it if an earlier run left it down
for i in $(seq 150); do
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
  case "$state" in
    idle|mixed|allocated|completing) log "node $NODE $state (partition $PARTITION, $CPUS CPUs, gpu:$GPUS)"; exit 0 ;;
    down*|drain*|*drain) [ $((i % 10)) = 0 ] && scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
  esac
  sleep 0.2
done
log "node $NODE not idle after 30 s: $(sinfo -N -l 2>&1 | tail -n +2)"
tail -n 20 "$LOG/slurmctld.log" "$LOG/slurmd.log" >&2 || true
exit 1
