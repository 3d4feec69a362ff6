#!/bin/sh
# SPDX-License-Identifier: MIT
#
# `make fuzz`: builds every tests/fuzz/fuzz_*.c with clang's libFuzzer
# (plus ASan and UBSan) and runs each for FUZZ_SECONDS (default 60) on its
# corpus, adding what it finds to tests/fuzz/corpus/<target>/. Crashes
# are written to build/fuzz/crash-* and fail the run.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SECS=${FUZZ_SECONDS:-60}
OUT=build/fuzz
mkdir -p "$OUT"
make --no-print-directory build/gen/sluice.pb-c.h >/dev/null

CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -std=c11 \
-D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iproto -Iclients/include \
-Iclients/lib -Iclients/flagctl -Itests/fuzz -isystem build/gen -Igatekeeper \
-Idaemon"
SRCS="$(ls proto/*.c clients/lib/*.c) build/gen/sluice.pb-c.c \
$(ls clients/flagctl/*.c | grep -v '/main\.c$') \
$(ls gatekeeper/*.c | grep -v '/main\.c$') $(ls daemon/*.c)"
LIBS="-lnng -lpthread -lprotobuf-c -lsodium -lyaml -ljansson -llmdb -lm"

status=0
for t in tests/fuzz/fuzz_*.c; do
	name=$(basename "$t" .c)
	echo "fuzz: building $name"
	# shellcheck disable=SC2086
	clang $CFLAGS -o "$OUT/$name" "$t" $SRCS $LIBS
	mkdir -p "tests/fuzz/corpus/$name"
	echo "fuzz: running $name for ${SECS}s"
	if ! "$OUT/$name" -max_total_time="$SECS" -max_len=70000 \
		-artifact_prefix="$OUT/$name-" "tests/fuzz/corpus/$name"; then
		status=1
	fi
done
exit $status
