#!/usr/bin/env bash
# Copy resumable training state (checkpoints are ignored by git) out of the work tree, and back.
#   scripts/backup_training_state.sh save|restore [DIR]   (default DIR: ../train-state)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${2:-../train-state}
case "${1:-}" in
  save)
    for run in cache/models/*/; do
      name=$(basename "$run")
      [ -f "$run/checkpoint.safetensors" ] || continue
      mkdir -p "$dir/models/$name"
      cp -a "$run/checkpoint.safetensors" "$run/log.jsonl" "$dir/models/$name/"
      [ -d "$run/snapshots" ] && cp -a "$run/snapshots" "$dir/models/$name/"
    done ;;
  restore)  # only into unfinished runs that have no checkpoint of their own
    for saved in "$dir"/models/*/; do
      name=$(basename "$saved")
      [ -f "cache/models/$name/checkpoint.safetensors" ] && continue
      # a finished model (trained elsewhere, e.g. on a GPU) must keep its own log and snapshots
      [ -f "cache/models/$name/manifest.json" ] && { echo "skip $name: already trained"; continue; }
      mkdir -p "cache/models/$name" && cp -a "$saved"/. "cache/models/$name/"
    done ;;
  *) echo "usage: $0 save|restore [DIR]" >&2; exit 2 ;;
esac
