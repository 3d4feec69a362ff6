#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench/run.sh B [bench_flagd options] — run by `make bench`. Starts one
# flagd with fsync on (deploy/local/flagd-local.sh), its data on the real
# disk under build/, runs bench_flagd against it, prints the figures and
# stops the flagd it started. It prints; it never judges the numbers.
set -eu

B=${1:?usage: bench/run.sh BUILD_DIR [bench_flagd options]}
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# A relative B is taken from the current directory, else from the root.
case "$B" in
/*) ;;
*) if [ -d "$B" ]; then B=$(cd "$B" && pwd); else B=$ROOT/$B; fi ;;
esac
LOCAL=$ROOT/deploy/local/flagd-local.sh
RUN=$ROOT/build/bench-run

[ -x "$B/bench/bench_flagd" ] || {
	echo "bench: no $B/bench/bench_flagd (run: make bench)" >&2
	exit 1
}

# A previous run that was killed may have left its flagd behind.
if [ -f "$RUN/env" ]; then
	"$LOCAL" down "$RUN" || true
fi
rm -rf "$RUN"
mkdir -p "$RUN"

# fsync figures mean nothing on tmpfs: say what the data sits on.
# (df -T says ext4 where stat -f can only say ext2/ext3.)
fstype=$(df -PT "$RUN" | awk 'NR == 2 { print $2 }')
[ -n "$fstype" ] || fstype=$(stat -f -c %T "$RUN")
dev=$(df -P "$RUN" | awk 'NR == 2 { print $1 }')
rot=""
name=$(basename "$dev")
for d in "/sys/class/block/$name" "/sys/class/block/$name/.."; do
	if [ -r "$d/queue/rotational" ]; then
		# Virtual disks often claim to be rotational: report, not judge.
		rot=" (rotational=$(cat "$d/queue/rotational"))"
		break
	fi
done
DISK="$fstype on $dev$rot"
case "$fstype" in
tmpfs | ramfs)
	echo "bench: WARNING: $RUN is on $fstype; fsync costs nothing there" >&2
	;;
esac
# wait_ready PID CMD...: true once CMD succeeds (up to 10 s), false if it
# never does or PID (the process it asks about) exits first.
wait_ready() {
	pid=$1
	shift
	for _ in $(seq 1 100); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# Stops a process this script started, by its PID: SIGTERM, up to 10 s,
# then SIGKILL.
stop_pid() {
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)

echo "bench: machine: $(nproc) CPUs (${CPU:-unknown CPU}), $(uname -sr)"
echo "bench: data dir $RUN on $DISK"

# Local evaluation (bench_eval.c) needs no flagd.
if [ -x "$B/bench/bench_eval" ]; then
	"$B/bench/bench_eval"
fi

trap '"$LOCAL" down "$RUN" >/dev/null || true' EXIT
# bench_flip's 1000 clients hold two connections each at flagd's end.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
trap 'exit 130' INT TERM
# fsync on whatever the caller's environment says; a short heartbeat so
# the 100 subscribers are known to be connected sooner.
FLAGD_NOSYNC=false FLAGD_HEARTBEAT_MS=200 FLAGD_LOG_LEVEL=warn \
	SLUICE_BUILD=$B "$LOCAL" up "$RUN" >/dev/null
. "$RUN/env"
echo "bench: flagd pid $FLAGD_PID, api $SLUICE_SERVER, changes $SLUICE_PUBLISH"

"$B/bench/bench_flagd" --api "$SLUICE_SERVER" --publish "$SLUICE_PUBLISH" \
	--key "$SLUICE_KEY" --disk "$DISK" "$@"

# Flip to all clients: 100 and 1000 sluice_client instances in one process
# against the same flagd (bench_flip.c).
if [ -x "$B/bench/bench_flip" ]; then
	"$B/bench/bench_flip" --api "$SLUICE_SERVER" --key "$SLUICE_KEY" \
		${BENCH_FLIP_ARGS:-} | tee "$RUN/flip.out"
fi

# The same fan-out on etcd, in the same run: a single-node etcd 3.4
# (Debian etcd-server; fsync on, its data on the same disk under $RUN),
# put -> last of 100 watchers, each watcher a raw /v3/watch stream read
# by one epoll loop in C (bench_etcd_watch.c). Stopped by its PID.
if [ -x "$B/bench/bench_etcd_watch" ] && command -v etcd >/dev/null 2>&1 &&
	[ -s "$RUN/flip.out" ]; then
	set -- $(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
	ED=$RUN/etcd1
	mkdir -p "$ED"
	etcd --name s1 --data-dir "$ED/data" \
		--listen-client-urls "http://127.0.0.1:$1" \
		--advertise-client-urls "http://127.0.0.1:$1" \
		--listen-peer-urls "http://127.0.0.1:$2" \
		--initial-advertise-peer-urls "http://127.0.0.1:$2" \
		--initial-cluster "s1=http://127.0.0.1:$2" \
		--initial-cluster-state new --logger zap --log-level error \
		>"$ED/etcd.log" 2>&1 </dev/null &
	ETCD_PID=$!
	trap 'kill "$ETCD_PID" 2>/dev/null; "$LOCAL" down "$RUN" >/dev/null || true' EXIT
	if wait_ready "$ETCD_PID" env ETCDCTL_API=3 etcdctl \
		--endpoints "127.0.0.1:$1" --command-timeout=1s endpoint health; then
		echo "bench: etcd $(etcd --version | sed -n 's/^etcd Version: //p') pid $ETCD_PID (single node, data on $DISK)"
		"$B/bench/bench_etcd_watch" --watch "127.0.0.1:$1" \
			--put "127.0.0.1:$1" --watchers 100 --changes 200 \
			--label "etcd single node" | tee "$RUN/etcd_watch.out" || true
	else
		echo "bench: etcd did not start:" >&2
		tail -n 20 "$ED/etcd.log" >&2
	fi
	stop_pid "$ETCD_PID"
	trap '"$LOCAL" down "$RUN" >/dev/null || true' EXIT
	python3 - "$RUN/flip.out" "$RUN/etcd_watch.out" <<'PY' || true
import json, sys
def doc(path, **want):
    try:
        for line in open(path):
            if line.startswith("{"):
                d = json.loads(line)
                if all(d.get(k) == v for k, v in want.items()):
                    return d
    except OSError:
        pass
    return None
s = doc(sys.argv[1], bench="flip", clients=100)
e = doc(sys.argv[2], bench="etcd_watch")
if s and e and e["p99"] > 0:
    print("bench: flip -> last of 100 (same run): sluice p50 %.2f ms p99 "
          "%.2f ms | etcd single node p50 %.2f ms p99 %.2f ms | ratio "
          "p50 %.2f p99 %.2f (target p99 <= 0.5)" % (
              s["p50"], s["p99"], e["p50"], e["p99"],
              s["p50"] / e["p50"], s["p99"] / e["p99"]))
PY
fi

# gatekeeper (bench_gatekeeper.c): a gatekeeper on a free loopback port
# against the same flagd, its data under $RUN; verified reports per second
# (1, 8, 32 and 64 reporters), its CPU per accepted report beside one raw
# Ed25519 verify, reports per LMDB commit per phase (from its /metrics),
# and bad report -> rollback in 100 clients. Stopped by its PID.
if [ -x "$B/bench/bench_gatekeeper" ] && [ -x "$B/gatekeeper" ]; then
	GKD=$RUN/gatekeeper
	mkdir -p "$GKD/data"
	gk_key_line() { # keygen OUT ID -> the key's base64 public part
		"$B/flagctl" keygen --out "$1" --id "$2" 2>&1 |
			awk -v id="$2" '$2 == id && NF >= 3 { print $3; exit }'
	}
	gkpub=$(gk_key_line "$GKD/gatekeeper.key" gatekeeper)
	reppub=$(gk_key_line "$GKD/reporter.key" bench-reporter)
	"$B/flagctl" key add operator gatekeeper "$gkpub" >/dev/null
	"$B/flagctl" key add reporter bench-reporter "$reppub" 'bench_gk*' \
		>/dev/null
	set -- $(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
	GK_API=tcp://127.0.0.1:$1
	GK_HTTP=http://127.0.0.1:$2
	"$B/gatekeeper" --api "$GK_API" --http "$GK_HTTP" \
		--flagd "$SLUICE_SERVER" --key "$GKD/gatekeeper.key" \
		--data "$GKD/data" --log-level warn 2>"$GKD/gatekeeper.log" &
	GK_PID=$!
	trap 'kill "$GK_PID" 2>/dev/null; "$LOCAL" down "$RUN" >/dev/null || true' EXIT
	if wait_ready "$GK_PID" "$B/flagctl" gate status \
		--gatekeeper "$GK_API"; then
		echo "bench: gatekeeper pid $GK_PID, api $GK_API (LMDB on $DISK)"
		"$B/bench/bench_gatekeeper" --api "$SLUICE_SERVER" \
			--key "$SLUICE_KEY" --gk "$GK_API" --gk-pid "$GK_PID" \
			--gk-http "$GK_HTTP" --reporter-key "$GKD/reporter.key" ||
			true
		# Reports per LMDB commit over the whole run (group commit).
		python3 - "$GK_HTTP/metrics" <<'EOF_PY' || true
import sys, urllib.request
m = {}
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    for line in r.read().decode().splitlines():
        if line.startswith("sluice_gk_"):
            k, _, v = line.partition(" ")
            m[k] = v
a = int(m.get("sluice_gk_reports_accepted_total", 0))
c = int(m.get("sluice_gk_report_commits_total", 0))
print("bench: gatekeeper: %d reports accepted in %d LMDB commits "
      "(%.2f per commit over the whole run)" % (a, c, a / c if c else 0))
EOF_PY
	else
		echo "bench: gatekeeper did not start:" >&2
		tail -n 20 "$GKD/gatekeeper.log" >&2
	fi
	stop_pid "$GK_PID"
	trap '"$LOCAL" down "$RUN" >/dev/null || true' EXIT
fi

# Replication: a 3-node cluster and, beside it, a 3-member etcd cluster
# (bench/repl.py; etcd comes from Debian's etcd-server, installed by
# `make bench`). BENCH_REPL=0 skips it.
if [ "${BENCH_REPL:-1}" != 0 ]; then
	"$LOCAL" down "$RUN" >/dev/null || true
	trap - EXIT
	if command -v etcd >/dev/null 2>&1; then
		echo
		echo "bench: replication (sluice 3 nodes vs etcd 3 members) on $DISK"
		/usr/bin/python3 "$ROOT/bench/repl.py" "$B" "$RUN"
	else
		echo "bench: no etcd (apt-get install etcd-server etcd-client); replication bench skipped"
	fi
fi
