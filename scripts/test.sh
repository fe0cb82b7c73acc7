#!/usr/bin/env bash
# Set up and run the whole test suite (CPU only, no downloads). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec "${PYTHON:-python3}" -m pytest "$@"
