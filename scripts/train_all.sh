#!/usr/bin/env bash
# Train every shipped model with the project's own command, into cache/models/NAME.
# Safe to stop and run again: each run resumes from its last checkpoint, finished ones are skipped.
set -u
cd "$(dirname "$0")/.."
MODELS=${*:-"classifier flow-class ddpm-class flow-time denoiser flow-class-constant-lr denoiser-pure-noise"}
for m in $MODELS; do
  if [ -f "cache/models/$m/manifest.json" ]; then echo "== $m already trained"; continue; fi
  echo "== training $m ($(date -u +%FT%TZ))"
  python -m engine train "$m" --out "cache/models/$m" --resume --no-progress || echo "== $m failed"
done
