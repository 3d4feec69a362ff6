#!/bin/sh
# SPDX-License-Identifier: MIT
#
# examples/demo.sh B — run by `make demo`. Starts a local 3-node flagd
# cluster (deploy/local/cluster.sh; SLUICE_NODES=1 for one node), applies examples/orders_discount_v2.yaml
# and examples/marts_revenue_v2.yaml, walks the first through its stages
# showing what a few partitions see at each one, shows a prerequisite
# refusal, a rollback to the last good stage taken while the cluster's
# leader is killed, and the audit trail with
# its verification. Stops everything it started, whatever happens.
# Exits non-zero if a step does not do what it should.
set -eu

B=${1:-build/release}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# A relative B is taken from the current directory, else from the root.
case "$B" in
/*) ;;
*) if [ -d "$B" ]; then B=$(cd "$B" && pwd); else B=$ROOT/$B; fi ;;
esac
LOCAL=$ROOT/deploy/local/cluster.sh
NODES=${SLUICE_NODES:-3}
export SLUICE_NODES=$NODES
EX=$ROOT/examples
FLAGCTL=$B/flagctl
PY=/usr/bin/python3
ORDERS=orders_discount_v2
MARTS=marts_revenue_v2
UNITS="2026-11-01 2026-11-02 2026-11-03 2026-11-04 2026-11-05"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-demo.XXXXXX")
cleanup() {
	rc=$?
	"$LOCAL" down "$DIR" >/dev/null 2>&1 || true
	rm -rf "$DIR"
	if [ "$rc" -ne 0 ]; then
		echo "demo: FAILED (exit $rc)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }
fail() {
	echo "demo: $*" >&2
	exit 1
}
# Shows (arguments with spaces quoted) and runs one flagctl command.
ctl() {
	line='$ flagctl'
	for a in "$@"; do
		case "$a" in
		*" "*) line="$line \"$a\"" ;;
		*) line="$line $a" ;;
		esac
	done
	echo "$line"
	"$FLAGCTL" "$@"
}
# Runs flagctl quietly (for values the demo checks or tabulates).
ctlq() { "$FLAGCTL" "$@"; }

# field ROLLOUT KEY: one field of `flagctl status ROLLOUT --json`.
field() {
	ctlq status "$1" --json | "$PY" -c \
		'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

expect_stage() {
	got=$(field "$1" stage)
	[ "$got" = "$2" ] || fail "$1 is at stage '$got', expected '$2'"
}

# What ETL jobs see at the current stage: the bool and int flags, and the
# percentage flag for each partition.
show_units() {
	dw=$(ctlq get orders.dual_write)
	wv=$(ctlq get orders.writer_version)
	printf '   orders.dual_write=%s  orders.writer_version=%s\n' "$dw" "$wv"
	for u in $UNITS; do
		v=$(ctlq get orders.read_new --unit "$u")
		printf '   partition %s  orders.read_new: %s\n' "$u" "$v"
	done
}

promote() {
	ctl promote "$ORDERS" --reason "$2"
	expect_stage "$ORDERS" "$1"
	echo "-- what the ETL jobs see at stage $1:"
	show_units
}

[ -x "$FLAGCTL" ] || fail "no $FLAGCTL (run: make all)"

step "start a local flagd cluster of $NODES node(s) (data in $DIR/data)"
SLUICE_BUILD=$B "$LOCAL" up "$DIR"
. "$DIR/env"
# flagctl reads SLUICE_SERVER and SLUICE_KEY from the environment.
export SLUICE_SERVER SLUICE_KEY

step "apply the two example rollouts"
ctl apply -f "$EX/$ORDERS.yaml" --reason "demo: new discount column"
ctl apply -f "$EX/$MARTS.yaml" --reason "demo: revenue net of discount"
ctl list
expect_stage "$ORDERS" off
echo "-- what the ETL jobs see at stage off:"
show_units

step "shadow: writers dual-write, nobody reads the new column yet"
promote shadow "demo: dual-write on"

step "prerequisite: $MARTS requires $ORDERS >= half, so this is refused"
echo "\$ flagctl promote $MARTS"
if out=$(ctlq promote "$MARTS" --reason "demo: too early" 2>&1); then
	echo "$out"
	fail "promote $MARTS succeeded, but $ORDERS is only at shadow"
fi
echo "$out"
case "$out" in
*requires* | *rerequisite*) ;;
*) fail "the refusal does not name the prerequisite" ;;
esac
expect_stage "$MARTS" off
echo "-- refused as expected; $MARTS is still at off"

step "canary: 10% of partitions read the new column"
promote canary "demo: canary"

step "half: 50% (a partition on at 10% stays on at 50%)"
promote half "demo: half"

step "now $MARTS may move"
ctl promote "$MARTS" --reason "demo: orders readers at half"
expect_stage "$MARTS" shadow

step "full: every reader on the new column"
promote full "demo: full"

if [ "$NODES" -gt 1 ]; then
	step "the cluster: one leader, the others follow"
	ctl cluster
	leader=$(ctlq cluster --json | "$PY" -c \
		'import json, sys; print(json.load(sys.stdin)["leader_id"])')
	pid=$(sed -n "s/^FLAGD_PID_$leader=//p" "$DIR/env")
	[ -n "$pid" ] || fail "no PID for leader node $leader"
	step "kill -9 the leader (node $leader, pid $pid): the rollback must still commit"
	kill -9 "$pid"
	t0=$("$PY" -c 'import time; print(int(time.monotonic() * 1000))')
	new=""
	for _ in $(seq 1 100); do
		new=$(ctlq cluster --json 2>/dev/null | "$PY" -c \
			'import json, sys; print(json.load(sys.stdin)["leader_id"])' \
			2>/dev/null || true)
		if [ -n "$new" ] && [ "$new" != 0 ] && [ "$new" != "$leader" ]; then
			break
		fi
		new=""
		sleep 0.1
	done
	[ -n "$new" ] || fail "no new leader within 10 s"
	t1=$("$PY" -c 'import time; print(int(time.monotonic() * 1000))')
	echo "-- node $new leads now (seen $((t1 - t0)) ms after the kill)"
fi

step "a bad batch: roll $ORDERS back to its last good stage"
ctl rollback "$ORDERS" --reason "demo: revenue_daily mismatch"
expect_stage "$ORDERS" half
[ "$(field "$ORDERS" state)" = rolled_back ] ||
	fail "$ORDERS is not in state rolled_back"
ctl status "$ORDERS"
echo "-- what the ETL jobs see after the rollback:"
show_units

step "the audit trail"
ctl audit

step "verify the audit chain"
ctl audit verify
if [ "$NODES" -gt 1 ]; then
	step "the surviving nodes and their new leader"
	ctl cluster
fi

step "done: stopping every flagd the demo started"
