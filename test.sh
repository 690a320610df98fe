#!/usr/bin/env bash
# The README's test command: restores, builds (with the native fix), and runs every test.
# Test projects run one after another: several start real clusters (worker processes, a Prometheus, PostgreSQL
# clients), and on a 2-core machine running them side by side starves the nodes' heartbeats.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build DistTrain.sln -c Release
dotnet test DistTrain.sln -c Release --no-build -m:1 "$@"
