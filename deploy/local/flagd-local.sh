#!/bin/sh
# SPDX-License-Identifier: MIT
#
# flagd-local.sh — a sluice flagd on this machine, for demos, benchmarks
# and hand testing.
#
#   flagd-local.sh up DIR     start flagd on free loopback ports, data in
#                             DIR/data, an admin key in DIR/admin.key;
#                             writes DIR/env and waits until flagd answers
#   flagd-local.sh down DIR   stop the flagd that `up DIR` started (by PID)
#   flagd-local.sh status DIR show DIR/env and whether flagd is running
#
# SLUICE_NODES=3 (or deploy/local/cluster.sh) starts a replicated cluster
# of that many voters instead: node I has its data in DIR/data/nodeI, its
# log in DIR/flagd-I.log, its own API, change-stream, HTTP and consensus
# ports; `up` waits until every node knows the leader.
#
# Binaries come from $SLUICE_BUILD (a build directory such as
# build/release) or else build/release under the repository. FLAGD_*
# variables in the environment reach flagd as its configuration (see
# `flagd --help`), e.g. FLAGD_NOSYNC=true or FLAGD_HEARTBEAT_MS=200.
# SLUICE_READY_S bounds the wait for readiness (default 15 s).
#
# Everything about one node (ports, data, log, pid) comes from node_vars()
# and is written to DIR/env by write_env(); a multi-node cluster extends
# those two functions and the NODES count.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
NODES=${SLUICE_NODES:-1}
READY_S=${SLUICE_READY_S:-15}
STOP_S=${SLUICE_STOP_S:-15}
KEY_ID=local-admin

say() { printf 'flagd-local: %s\n' "$*"; }
die() {
	printf 'flagd-local: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	sed -n '4,12p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

find_bins() {
	B=${SLUICE_BUILD:-$ROOT/build/release}
	case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
	FLAGD=$B/flagd
	FLAGCTL=$B/flagctl
	# The test driver can stand in for flagctl (keygen, readiness).
	SLDRIVE=$B/tests/tools/sldrive
	[ -x "$FLAGD" ] || die "no flagd at $FLAGD (run make, or set SLUICE_BUILD)"
	[ -x "$FLAGCTL" ] || [ -x "$SLDRIVE" ] ||
		die "no flagctl at $FLAGCTL (run make, or set SLUICE_BUILD)"
}

# Whether the node at API $1 answers; for a cluster, also that it knows
# its leader.
answers() {
	if [ -x "$SLDRIVE" ]; then
		out=$("$SLDRIVE" call "$1" cluster 2>/dev/null) || return 1
		case "$out" in
		*'"ok":true'*'"leader_id":0,'* | *'"leader_id":0,'*'"ok":true'*)
			return 1 ;;
		*'"ok":true'*) return 0 ;;
		*) return 1 ;;
		esac
	fi
	# Without the test tool (a tree where only `make all` ran, as
	# before `make demo`): flagctl's view of the cluster, which must
	# name a leader too, or the first write would find none.
	out=$("$FLAGCTL" --server "$1" --key "$KEY" cluster --json \
		2>/dev/null) || return 1
	case "$out" in
	*'"leader_id": 0,'*) return 1 ;;
	*'"leader_id": '*) return 0 ;;
	*) return 1 ;;
	esac
}

# Prints N free loopback TCP ports. The sockets stay bound until all N are
# chosen, so the ports are distinct; another process may still take one
# before flagd binds it, in which case flagd fails to start and says so.
free_ports() {
	"$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# node_vars I PORTS...: the values of node I (1-based) from all ports
# (PORTS_PER_NODE per node, node 1's first).
# Sets N_API N_PUB N_HTTP N_RAFT N_DATA N_LOG.
PORTS_PER_NODE=4
node_vars() {
	i=$1
	shift
	skip=$(((i - 1) * PORTS_PER_NODE))
	while [ "$skip" -gt 0 ]; do
		shift
		skip=$((skip - 1))
	done
	N_API=tcp://127.0.0.1:$1
	N_PUB=tcp://127.0.0.1:$2
	N_HTTP=http://127.0.0.1:$3
	N_RAFT=127.0.0.1:$4
	if [ "$NODES" -eq 1 ]; then
		N_DATA=$DIR/data
		N_LOG=$DIR/flagd.log
	else
		N_DATA=$DIR/data/node$i
		N_LOG=$DIR/flagd-$i.log
	fi
}

# Writes the secret key and the authorized_keys line that seeds flagd's
# key store. The public key is the second half of the libsodium secret
# key in the key file (see proto/keys.h for the formats).
make_keys() {
	KEY=$DIR/admin.key
	AUTH=$DIR/authorized_keys
	if [ ! -f "$KEY" ] && [ ! -x "$FLAGCTL" ]; then
		"$SLDRIVE" keygen "$KEY" "$KEY_ID" >"$DIR/keygen.out" 2>&1 ||
			die "sldrive keygen failed"
	fi
	if [ ! -f "$KEY" ]; then
		"$FLAGCTL" keygen --id "$KEY_ID" --out "$KEY" >"$DIR/keygen.out" 2>&1 ||
			{
				cat "$DIR/keygen.out" >&2
				die "flagctl keygen failed"
			}
	fi
	"$PY" - "$KEY" "$AUTH" <<'EOF'
import base64, sys
parts = open(sys.argv[1]).read().split()
if len(parts) != 3 or parts[0] != "sluice-secret-key-v1":
    sys.exit("flagd-local: %s is not a sluice secret key file" % sys.argv[1])
sk = base64.b64decode(parts[2])
if len(sk) != 64:
    sys.exit("flagd-local: %s: secret key is not 64 bytes" % sys.argv[1])
with open(sys.argv[2], "w") as f:
    f.write("# written by deploy/local/flagd-local.sh\n")
    f.write("admin %s %s\n" % (parts[1], base64.b64encode(sk[32:]).decode()))
EOF
}

alive() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
	# A PID may have been reused: only a flagd counts.
	case "$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" in
	*flagd*) return 0 ;;
	*) return 1 ;;
	esac
}

# Writes DIR/env. For a cluster SLUICE_SERVER lists every node's API
# (clients fail over along it) and FLAGD_PIDS every PID; node I's values
# are FLAGD_API_I, FLAGD_PID_I, ... (the first node's values are also the
# unnumbered ones, as for a single flagd).
write_env() {
	{
		echo "# written by deploy/local/flagd-local.sh up; source it"
		echo "SLUICE_SERVER=$ALL_API"
		echo "SLUICE_KEY=$KEY"
		echo "SLUICE_PUBLISH=$FIRST_PUB"
		echo "SLUICE_HTTP=$FIRST_HTTP"
		echo "FLAGD_PID=${PIDS%% *}"
		echo "FLAGD_PIDS=\"$PIDS\""
		echo "FLAGD_DATA=$FIRST_DATA"
		echo "FLAGD_LOG=$FIRST_LOG"
		echo "FLAGD_NODES=$NODES"
		echo "FLAGD_PEERS=$PEERS"
		printf '%s' "$PER_NODE"
		echo "SLUICE_BUILD=$B"
		echo "export SLUICE_SERVER SLUICE_KEY SLUICE_PUBLISH SLUICE_HTTP"
	} >"$DIR/env.tmp"
	mv "$DIR/env.tmp" "$DIR/env"
}

cmd_up() {
	find_bins
	mkdir -p "$DIR"
	DIR=$(cd "$DIR" && pwd)
	if [ -f "$DIR/env" ]; then
		old=$(sed -n 's/^FLAGD_PID=//p' "$DIR/env")
		if alive "$old"; then
			die "a flagd (pid $old) already runs for $DIR; run: $0 down $DIR"
		fi
		rm -f "$DIR/env"
	fi
	make_keys

	set -- $(free_ports $((NODES * PORTS_PER_NODE)))
	PEERS=""
	ALL_API=""
	n=1
	while [ "$n" -le "$NODES" ]; do
		node_vars "$n" "$@"
		PEERS="${PEERS:+$PEERS,}$n=$N_RAFT@$N_API"
		ALL_API="${ALL_API:+$ALL_API,}$N_API"
		n=$((n + 1))
	done
	PIDS=""
	PER_NODE=""
	n=1
	while [ "$n" -le "$NODES" ]; do
		node_vars "$n" "$@"
		mkdir -p "$N_DATA"
		# flagd outlives this script; `down` stops it by PID. $! is
		# flagd itself (no wrapper), so the PID in DIR/env is the one
		# to signal.
		"$FLAGD" --id "$n" --data "$N_DATA" --api "$N_API" \
			--publish "$N_PUB" --http "$N_HTTP" --raft "$N_RAFT" \
			--peers "$PEERS" \
			--authorized-keys "$AUTH" </dev/null >"$N_LOG" 2>&1 &
		PID=$!
		PIDS="${PIDS:+$PIDS }$PID"
		PER_NODE="${PER_NODE}FLAGD_API_$n=$N_API
FLAGD_PUBLISH_$n=$N_PUB
FLAGD_HTTP_$n=$N_HTTP
FLAGD_RAFT_$n=$N_RAFT
FLAGD_DATA_$n=$N_DATA
FLAGD_LOG_$n=$N_LOG
FLAGD_PID_$n=$PID
"
		if [ "$n" -eq 1 ]; then
			FIRST_PUB=$N_PUB
			FIRST_HTTP=$N_HTTP
			FIRST_DATA=$N_DATA
			FIRST_LOG=$N_LOG
		fi
		n=$((n + 1))
	done
	write_env

	# Ready once every node answers (and knows its leader); bounded,
	# and given up at once if a flagd exits.
	i=0
	n=1
	while [ "$n" -le "$NODES" ]; do
		node_vars "$n" "$@"
		PID=$(sed -n "s/^FLAGD_PID_$n=//p" "$DIR/env")
		if ! alive "$PID"; then
			tail -n 20 "$N_LOG" >&2 || true
			kill -TERM $PIDS 2>/dev/null || true
			rm -f "$DIR/env"
			die "flagd $n exited during start-up (log: $N_LOG)"
		fi
		if answers "$N_API"; then
			n=$((n + 1))
			continue
		fi
		i=$((i + 1))
		if [ "$i" -ge $((READY_S * 10)) ]; then
			kill -TERM $PIDS 2>/dev/null || true
			tail -n 20 "$N_LOG" >&2 || true
			rm -f "$DIR/env"
			die "flagd $n did not answer within ${READY_S}s (log: $N_LOG)"
		fi
		sleep 0.1
	done
	PID=${PIDS%% *}
	node_vars 1 "$@"
	if [ "$NODES" -gt 1 ]; then
		say "cluster of $NODES ready after ~$((i * 100)) ms: pids $PIDS"
		say "  peers    $PEERS"
		say "  apis     $ALL_API"
		say "  logs     $DIR/flagd-*.log"
	fi
	say "flagd pid $PID ready after ~$((i * 100)) ms"
	say "  api      $N_API"
	say "  changes  $N_PUB"
	say "  http     $N_HTTP  (/healthz /readyz /metrics)"
	say "  data     $N_DATA"
	say "  log      $N_LOG"
	say "  key      $KEY (admin, id $KEY_ID)"
	say "  env      $DIR/env   (. $DIR/env; \$FLAGCTL --server \$SLUICE_SERVER --key \$SLUICE_KEY list)"
}

cmd_down() {
	[ -d "$DIR" ] || die "no such directory $DIR"
	if [ ! -f "$DIR/env" ]; then
		say "nothing to stop in $DIR (no env file)"
		return 0
	fi
	pids=$(sed -n 's/^FLAGD_PIDS=//p' "$DIR/env" | tr -d '"')
	for pid in $pids; do
		if ! alive "$pid"; then
			say "flagd pid $pid is not running"
			continue
		fi
		kill -TERM "$pid"
		i=0
		while alive "$pid" && [ "$i" -lt $((STOP_S * 10)) ]; do
			sleep 0.1
			i=$((i + 1))
		done
		if alive "$pid"; then
			say "flagd pid $pid still running after ${STOP_S}s; SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		else
			say "flagd pid $pid stopped"
		fi
	done
	rm -f "$DIR/env"
}

cmd_status() {
	[ -f "$DIR/env" ] || {
		say "not running (no $DIR/env)"
		return 1
	}
	cat "$DIR/env"
	for pid in $(sed -n 's/^FLAGD_PIDS=//p' "$DIR/env" | tr -d '"'); do
		if alive "$pid"; then
			say "flagd pid $pid running"
		else
			say "flagd pid $pid NOT running"
		fi
	done
}

[ $# -eq 2 ] || usage
DIR=$2
case "$1" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*) usage ;;
esac
