#!/usr/bin/env bash
# Install what Diffusion Lab needs into this machine's Python (no new multi-GB venv per clone).
# Usage: scripts/setup.sh [--test]   (--test also installs Debian's chromium for browser tests and
# nginx-light for the class-serving test)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "Diffusion Lab needs Python 3.11 or newer" >&2; exit 1; }

# requirements.txt runs the app; requirements-test.txt adds the test tools (--test).
reqs=(-r requirements.txt)
if [ "${1:-}" = "--test" ]; then reqs+=(-r requirements-test.txt); fi
# Skip pip when these exact requirements files are already installed (pip check of 20 packages
# takes a while); the stamp is keyed by the files' hashes and the interpreter.
stamp_dir=${XDG_CACHE_HOME:-$HOME/.cache}/diffusion-lab
files=(requirements.txt)
if [ "${1:-}" = "--test" ]; then files+=(requirements-test.txt); fi
stamp="$stamp_dir/req-$(cat "${files[@]}" <("$PY" -c 'import sys; print(sys.executable)') | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  "$PY" -m pip install --disable-pip-version-check -q "${reqs[@]}"
  mkdir -p "$stamp_dir" && touch "$stamp"
fi

if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "browser tests need chromium: sudo apt-get install chromium" >&2
  fi
fi

# the class-serving test (tests/system/test_serving.py) runs scripts/serve_class.sh: nginx in front
if [ "${1:-}" = "--test" ] && ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian's nginx-light for the class-serving test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
  else
    echo "the class-serving test needs nginx: sudo apt-get install nginx-light" >&2
  fi
fi
