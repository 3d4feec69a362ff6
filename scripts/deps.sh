#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Installs the Debian packages sluice needs to build and test, if any are
# missing. As root it runs apt-get; otherwise it prints the exact command.
# Extra packages (e.g. for benchmarks) may be passed as arguments.
set -eu

PKGS="gcc make libc6-dev libnng-dev liblmdb-dev libprotobuf-c-dev
protobuf-c-compiler libsodium-dev libcmocka-dev libyaml-dev libjansson-dev
python3 python3-pytest iproute2 lmdb-utils libraft-dev libuv1-dev $*"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	exit 0
fi

echo "deps: missing Debian packages:$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: run as root:  apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
echo "deps: apt-get update"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
echo "deps: apt-get install -y$missing"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
