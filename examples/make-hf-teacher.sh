#!/bin/sh
# Writes the Hugging Face checkpoint examples/hf-teacher.yaml imports: runs examples/hf-teacher-pretrain.yaml (a fixed
# seed, so the same weights every time on the same build) and copies the stage's hf/ folder (config.json,
# model.safetensors, vocab.json, merges.txt, README.md) to DATA_ROOT/models/gpt-teacher.
#
#   examples/make-hf-teacher.sh [DATA_ROOT [disttrain run options, e.g. --quick]]
#
# DATA_ROOT defaults to this folder and must hold own-data/ (examples/own-data). DISTTRAIN is the command that runs
# DistTrain (default: disttrain; from a checkout: DISTTRAIN="dotnet src/DistTrain.Cli/bin/Release/net10.0/disttrain.dll").
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=${1:-$here}
[ $# -gt 0 ] && shift
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
${DISTTRAIN:-disttrain} run "$here/hf-teacher-pretrain.yaml" --data-root "$root" --out "$runs/pretrain" "$@"
rm -rf "$root/models/gpt-teacher"
mkdir -p "$root/models"
cp -r "$runs/pretrain/lm/hf" "$root/models/gpt-teacher"
echo "$root/models/gpt-teacher"
