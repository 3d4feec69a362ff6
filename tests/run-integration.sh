#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Runs the integration suites against the binaries of one build variant:
# the C integration programs, the fuzz corpus replays, then the pytest
# suite (which starts real flagd processes on free loopback ports).
set -u
# Leaks inside libnng that are not ours (see the file).
LSAN_SUPP=$(cd "$(dirname "$0")" && pwd)/lsan.supp
export LSAN_OPTIONS="suppressions=$LSAN_SUPP${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
B="$1"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export SLUICE_BUILD="$ROOT/$B"
export FLAGD_BIN="$ROOT/$B/flagd"
export FLAGCTL_BIN="$ROOT/$B/flagctl"
status=0

for t in "$ROOT/$B"/tests/integration/*; do
	[ -x "$t" ] || continue
	echo "== integration $(basename "$t")"
	"$t" 2>&1 || status=1
done

for r in "$ROOT/$B"/tests/fuzz/replay_*; do
	[ -x "$r" ] || continue
	name=${r##*/replay_}
	corpus="$ROOT/tests/fuzz/corpus/$name"
	echo "== fuzz corpus replay $name"
	"$r" "$corpus" 2>&1 || status=1
done

if ls "$ROOT"/tests/integration/test_*.py >/dev/null 2>&1; then
	echo "== integration pytest"
	# Debian's interpreter and its python3-pytest; -p no:cacheprovider
	# keeps the source tree clean.
	/usr/bin/python3 -m pytest -p no:cacheprovider -q -rs \
		"$ROOT/tests/integration" "$ROOT/tests/fault" || status=1
fi
"$ROOT/clients/python/run-tests.sh" "$B" || status=1 # the sluice Python package
exit $status
