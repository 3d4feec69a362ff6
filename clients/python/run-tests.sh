#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Runs the sluice Python package's tests (clients/python/tests) against
# one build variant's libsluice.so.0, under Debian's /usr/bin/python3 and
# its python3-pytest. Called by tests/run-integration.sh:
#
#     clients/python/run-tests.sh build/<variant>
#
# Sanitizer variants: an instrumented libsluice.so.0 needs its sanitizer
# runtime loaded before anything else in the (uninstrumented) interpreter,
# so the runtimes the library links (libasan, libubsan, libtsan, as ldd
# resolves them) are put in LD_PRELOAD, asan first. LeakSanitizer is off
# for these runs (ASAN_OPTIONS=detect_leaks=0): CPython's own allocations
# would drown any report; the C unit and integration suites cover leaks.
# When the library needs a runtime that cannot be preloaded (not found, or
# linked statically into executables only, as clang does), the suite
# prints "skipped under <variant>: <reason>" and succeeds.
set -u
B="${1:?usage: run-tests.sh build/<variant>}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
LIB="$ROOT/$B/libsluice.so.0"
variant=${B##*/}

echo "== python client ($variant)"
if [ ! -f "$LIB" ]; then
	echo "python client: skipped under $variant: no $B/libsluice.so.0"
	exit 0
fi

preload=""
for rt in libasan libubsan libtsan; do
	line=$(ldd "$LIB" 2>/dev/null | grep "^[[:space:]]*$rt\.so") || continue
	path=$(echo "$line" | awk '{ print $3 }')
	case "$path" in
	/*) preload="$preload${preload:+ }$path" ;;
	*)
		echo "python client: skipped under $variant: $rt needed by" \
			"libsluice.so.0 but not found by ldd"
		exit 0
		;;
	esac
done
if [ -z "$preload" ] &&
	nm -D --undefined-only "$LIB" 2>/dev/null |
	grep -q ' __\(asan\|tsan\|ubsan\|msan\)_'; then
	echo "python client: skipped under $variant: libsluice.so.0 uses a" \
		"sanitizer runtime it does not link (static runtime), which" \
		"cannot be loaded into python"
	exit 0
fi

export SLUICE_LIB="$LIB"
export SLUICE_BUILD="${SLUICE_BUILD:-$ROOT/$B}"
export FLAGD_BIN="${FLAGD_BIN:-$ROOT/$B/flagd}"
export FLAGCTL_BIN="${FLAGCTL_BIN:-$ROOT/$B/flagctl}"
export PYTHONDONTWRITEBYTECODE=1 # keep the source tree clean
if [ -n "$preload" ]; then
	echo "python client: LD_PRELOAD=$preload"
	export LD_PRELOAD="$preload${LD_PRELOAD:+ $LD_PRELOAD}"
	# Later settings win: leak detection stays off whatever CI exports.
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi
exec "$PY" -m pytest -p no:cacheprovider -q -rs "$ROOT/clients/python/tests"
