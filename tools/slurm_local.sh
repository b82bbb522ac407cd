#!/usr/bin/env bash
# A single-node SLURM cluster on this (Debian) machine, for the SLURM end-to-end test and for
# trying the workflow's cluster path locally (workflow/profiles/slurm).
#
#   sudo tools/slurm_local.sh up       # start munged, MariaDB, slurmdbd, slurmctld, slurmd (idempotent)
#   sudo tools/slurm_local.sh status   # each daemon's PID, then sinfo; exit 0 only when the node is usable
#   sudo tools/slurm_local.sh down     # stop what `up` started, by PID (add --purge to delete the state dir)
#   tools/slurm_local.sh env           # the SLURM_CONF line to paste into a shell
#
# Needs root and Debian's packages (no systemd is used):
#   apt-get install -y --no-install-recommends slurm-wlm munge slurmdbd mariadb-server
# Everything it writes (configs, logs, PID files, the MariaDB data, the spool dirs) is under
# $HIERPOOL_SLURM_DIR (default /tmp/hierpool-slurm). It also creates /run/munge, and links
# /etc/slurm/slurm.conf to its own slurm.conf when that file does not exist yet (so sinfo,
# sbatch and the jobs find the cluster without SLURM_CONF); `down` removes that link again.
# An already running munged (e.g. the system's) is used as it is and never stopped.
#
# The cluster: one node named after `hostname -s` (all its CPUs, 95% of its memory), one default
# partition `debug`, cluster `hierpool` with accounting in slurmdbd (so `sacct` works) and an
# account `hierpool` that the invoking user (root) may charge.
set -euo pipefail

STATE=${HIERPOOL_SLURM_DIR:-/tmp/hierpool-slurm}
CLUSTER=${HIERPOOL_SLURM_CLUSTER:-hierpool}
PARTITION=debug
ACCOUNT=hierpool
DB_PORT=${HIERPOOL_SLURM_DB_PORT:-3307}
DB_PASS=hierpool-local-only
TIMEOUT=${HIERPOOL_SLURM_TIMEOUT:-90}
NODE=$(hostname -s)
CONF=$STATE/slurm.conf
export SLURM_CONF=$CONF
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd) # start order; `down` stops them in reverse

log() { printf 'slurm_local: %s\n' "$*"; }
die() {
    printf 'slurm_local: ERROR: %s\n' "$*" >&2
    exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.5 s until it succeeds.
wait_for() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${seconds}s waiting for $what (logs: $STATE/log/)"
        sleep 0.5
    done
}

pidfile() { echo "$STATE/pids/$1.pid"; }

# alive NAME: true when the PID recorded for NAME is running and is that program.
alive() {
    local file pid
    file=$(pidfile "$1")
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    [[ -n $pid && -r /proc/$pid/comm ]] || return 1
    [[ $(</proc/"$pid"/comm) == "$1" ]]
}

# launch NAME COMMAND...: run COMMAND in the background, detached from this shell (own session,
# no inherited stdin/stdout, so a caller capturing our output does not wait for the daemon),
# and record its PID. The commands run in the foreground mode of each daemon, so $! is its PID.
launch() {
    local name=$1
    shift
    setsid "$@" </dev/null >>"$STATE/log/$name.out" 2>&1 &
    echo $! >"$(pidfile "$name")"
    sleep 0.2
    alive "$name" || die "$name did not start: $(tail -5 "$STATE/log/$name.out" 2>/dev/null)"
    log "$name started (PID $(<"$(pidfile "$name")"))"
}

munge_works() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
db() { mariadb --no-defaults -S "$STATE/mysqld/mysqld.sock" -u root "$@"; }

need_root_and_packages() {
    [[ $(id -u) -eq 0 ]] || die "run as root (the daemons need it)"
    local missing=()
    for cmd in munged munge unmunge mariadbd mariadb-install-db mariadb slurmdbd slurmctld slurmd sinfo sacctmgr setpriv; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    ((${#missing[@]} == 0)) || die "missing ${missing[*]}; install: apt-get install -y --no-install-recommends slurm-wlm munge slurmdbd mariadb-server"
}

write_configs() {
    local cpus mem
    cpus=$(nproc)
    mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.95}' /proc/meminfo)
    cat >"$CONF" <<EOF
# Written by tools/slurm_local.sh: a single-node test cluster. Not for production.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default a job that asks for no memory is given the whole node's
DefMemPerCPU=1024
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    (
        umask 077
        cat >"$STATE/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    )
}

start_munge() {
    if munge_works; then
        alive munged && log "munged already running (PID $(<"$(pidfile munged)"))" || log "using the munged already running on this machine"
        return
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 "$STATE/munge"
    if [[ ! -s /etc/munge/munge.key ]]; then
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom bs=1024 count=1 status=none >/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
        log "created /etc/munge/munge.key"
    fi
    launch munged setpriv --reuid=munge --regid=munge --init-groups \
        munged --foreground --log-file="$STATE/munge/munged.log" \
        --seed-file="$STATE/munge/munged.seed" --pid-file="$STATE/munge/munged.pid"
    wait_for 20 "munged" munge_works
}

start_mariadb() {
    install -d -o mysql -g mysql -m 0755 /run/mysqld "$STATE/mysqld"
    if [[ ! -d $STATE/mysql/mysql ]]; then
        install -d -o mysql -g mysql -m 0750 "$STATE/mysql"
        mariadb-install-db --no-defaults --user=mysql --datadir="$STATE/mysql" \
            --auth-root-authentication-method=socket --skip-test-db >"$STATE/log/mariadb-install.out" 2>&1 ||
            die "mariadb-install-db failed: see $STATE/log/mariadb-install.out"
    fi
    if ! alive mariadbd; then
        launch mariadbd mariadbd --no-defaults --user=mysql --datadir="$STATE/mysql" \
            --socket="$STATE/mysqld/mysqld.sock" --port="$DB_PORT" --bind-address=127.0.0.1 \
            --pid-file="$STATE/mysqld/mysqld.pid" --log-error="$STATE/log/mysqld.log" \
            --innodb-buffer-pool-size=64M --skip-name-resolve
    fi
    wait_for "$TIMEOUT" "MariaDB" db -e "SELECT 1"
    db <<EOF
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
}

sacctmgr_has() { [[ -n $(sacctmgr -n -P list "$@" 2>/dev/null) ]]; }

start_slurm() {
    install -d -m 0755 /run/slurm "$STATE/spool/ctld" "$STATE/spool/d"
    # slurmdbd reads slurmdbd.conf from the directory of $SLURM_CONF
    alive slurmdbd || launch slurmdbd slurmdbd -D
    wait_for "$TIMEOUT" "slurmdbd" sacctmgr -n list cluster
    sacctmgr_has cluster "$CLUSTER" format=cluster || sacctmgr -i add cluster "$CLUSTER" >/dev/null
    sacctmgr_has account "$ACCOUNT" format=account ||
        sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="hierpool tests" organization=hierpool >/dev/null
    local user
    user=$(id -un)
    sacctmgr_has association user="$user" account="$ACCOUNT" format=account ||
        sacctmgr -i add user "$user" account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
    alive slurmctld || launch slurmctld slurmctld -D -f "$CONF"
    wait_for "$TIMEOUT" "slurmctld (scontrol ping)" bash -c 'scontrol ping | grep -q "is UP"'
    alive slurmd || launch slurmd slurmd -D -f "$CONF"
    wait_for "$TIMEOUT" "node $NODE to register" bash -c "sinfo -h -n $NODE -o %T | grep -qvE 'unknown|^\$'"
    # A node left down/drained by an earlier run of this script is usable again.
    if sinfo -h -n "$NODE" -o %T | grep -qE 'down|drain'; then
        scontrol update nodename="$NODE" state=resume || true
    fi
    wait_for "$TIMEOUT" "node $NODE to be idle" bash -c "sinfo -h -n $NODE -o %T | grep -qE '^(idle|mixed|allocated)'"
}

link_system_conf() {
    if [[ ! -e /etc/slurm/slurm.conf && ! -L /etc/slurm/slurm.conf ]]; then
        mkdir -p /etc/slurm
        ln -s "$CONF" /etc/slurm/slurm.conf
        touch "$STATE/linked-etc-slurm-conf"
        log "linked /etc/slurm/slurm.conf -> $CONF"
    elif [[ $(readlink /etc/slurm/slurm.conf) != "$CONF" ]]; then
        log "/etc/slurm/slurm.conf exists and is not ours: export SLURM_CONF=$CONF to use this cluster"
    fi
}

up() {
    need_root_and_packages
    local start=$SECONDS
    mkdir -p "$STATE/pids" "$STATE/log" "$STATE/run"
    chmod 0755 "$STATE"
    write_configs
    start_munge
    start_mariadb
    start_slurm
    link_system_conf
    log "cluster '$CLUSTER' up in $((SECONDS - start))s: node $NODE, partition $PARTITION, account $ACCOUNT; SLURM_CONF=$CONF"
    sinfo -N -o '%N %T %c %m %P'
}

status() {
    local ok=0
    for name in "${DAEMONS[@]}"; do
        if alive "$name"; then
            log "$name running (PID $(<"$(pidfile "$name")"))"
        elif [[ $name == munged ]] && munge_works; then
            log "munged: using one this script did not start"
        else
            log "$name not running"
            ok=1
        fi
    done
    if ((ok == 0)); then
        sinfo -N -o '%N %T %c %m %P' && sinfo -h -n "$NODE" -o %T | grep -qE '^(idle|mixed|allocated)' || ok=1
    fi
    return $ok
}

down() {
    local purge=${1:-}
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        local name=${DAEMONS[i]} file pid
        file=$(pidfile "$name")
        [[ -f $file ]] || continue
        pid=$(<"$file")
        if alive "$name"; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 40); do
                alive "$name" || break
                sleep 0.25
            done
            if alive "$name"; then
                kill -KILL "$pid" 2>/dev/null || true
                log "$name (PID $pid) killed"
            else
                log "$name (PID $pid) stopped"
            fi
        fi
        rm -f "$file"
    done
    if [[ -f $STATE/linked-etc-slurm-conf ]]; then
        [[ $(readlink /etc/slurm/slurm.conf 2>/dev/null) == "$CONF" ]] && rm -f /etc/slurm/slurm.conf
        rm -f "$STATE/linked-etc-slurm-conf"
    fi
    if [[ $purge == --purge ]]; then
        case $STATE in /tmp/* | /var/tmp/*) ;; *) [[ -f $STATE/slurmdbd.conf ]] || die "refusing to purge $STATE: not a state dir of this script" ;; esac
        rm -rf "$STATE"
        log "removed $STATE"
    fi
}

case ${1:-} in
up) up ;;
down) down "${2:-}" ;;
status) status ;;
env) echo "export SLURM_CONF=$CONF" ;;
*)
    sed -n '2,9p' "$0"
    exit 2
    ;;
esac
