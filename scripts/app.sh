#!/usr/bin/env bash
# Set up and start the dashboard on the built-in models: http://127.0.0.1:8501
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m dashboard.serve "$@"
