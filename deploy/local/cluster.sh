#!/bin/sh
# SPDX-License-Identifier: MIT
#
# cluster.sh up|down|status DIR — a 3-voter flagd cluster on loopback
# (free ports, data in DIR/data/node1..3, logs DIR/flagd-1..3.log), started
# and stopped by PID. SLUICE_NODES overrides the size (e.g. 5). Everything
# else is flagd-local.sh's; DIR/env lists every node.
set -eu
SLUICE_NODES=${SLUICE_NODES:-3}
export SLUICE_NODES
exec "$(dirname "$0")/flagd-local.sh" "$@"
