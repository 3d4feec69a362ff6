#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Runs every cmocka unit-test binary given, prints each summary (cmocka
# writes it on stderr, so both streams are kept) and a closing total.
set -u
# Leaks inside libnng that are not ours (see the file).
LSAN_SUPP=$(cd "$(dirname "$0")" && pwd)/lsan.supp
export LSAN_OPTIONS="suppressions=$LSAN_SUPP${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
B="$1"
shift
pass=0
fail=0
failed=""
for t in "$@"; do
	name=${t#"$B"/tests/unit/}
	echo "== unit $name"
	if "$t" 2>&1; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed $name"
	fi
done
echo "unit: $pass passed, $fail failed"
if [ "$fail" -ne 0 ]; then
	echo "failed:$failed"
	exit 1
fi
