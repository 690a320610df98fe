#!/usr/bin/env bash
# The README's test command: restores, builds (with the native fix), and runs every test.
set -euo pipefail
cd "$(dirname "$0")"
dotnet test DistTrain.sln -c Release "$@"
