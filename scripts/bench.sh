#!/bin/sh
# Runs the sysban benchmark harness (scripts/bench) from the repository root.
# It needs root for the network namespaces and nftables; flags pass through:
#   sudo scripts/bench.sh -sections match,tcp -lines 200000
set -eu
cd "$(dirname "$0")/.."
exec go run ./scripts/bench "$@"
