#!/usr/bin/env bash
# Serve Diffusion Lab to a class: N Streamlit replicas on loopback, Debian's nginx in front on
# one port, every request of a browser pinned to one replica (deploy/nginx.conf.template).
#
# Usage: scripts/serve_class.sh N [PORT]     (PORT: 8501 by default; replicas on PORT+1..PORT+N)
#
# Environment:
#   DIFFLAB_LISTEN=0.0.0.0        address nginx listens on (default 127.0.0.1: this machine only;
#                                 serve a room behind TLS and authentication, docs/serving.md)
#   DIFFLAB_HTPASSWD=FILE         HTTP basic authentication at the proxy (htpasswd file)
#   DIFFLAB_REPLICA_PORTS="P ..." the replicas' ports instead of PORT+1..PORT+N
#   DIFFLAB_SERVE_DIR=DIR         logs, pids and the rendered nginx.conf (default cache/serve)
#   DIFFLAB_COOKIE_SECRET=S       Streamlit's cookie secret, the same on every replica (st.login);
#                                 a random one is made for this run when unset
#   DIFFLAB_MODELS_DIR, DIFFLAB_RUNS_DIR, DIFFLAB_RUNS_BUDGET_MB: as for one server (shared)
#   DIFFLAB_SKIP_SETUP=1          do not run scripts/setup.sh (the tests)
#
# Runs in the foreground; Ctrl-C (or SIGTERM) stops nginx and every replica. A replica that dies
# is reported and not restarted: its browsers reconnect to the others through the proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
N=${1:-}
PORT=${2:-8501}
if ! [[ "$N" =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ] || [ "$N" -gt 64 ] || ! [[ "$PORT" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/serve_class.sh N [PORT]   (N replicas, 1-64; PORT 8501 by default)" >&2
  exit 2
fi
LISTEN=${DIFFLAB_LISTEN:-127.0.0.1}
STATE=${DIFFLAB_SERVE_DIR:-cache/serve}
mkdir -p "$STATE/nginx"
STATE=$(cd "$STATE" && pwd)

if [ -z "${DIFFLAB_SKIP_SETUP:-}" ]; then bash scripts/setup.sh; fi
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || NGINX=$(ls /usr/sbin/nginx 2>/dev/null || true)
if [ -z "$NGINX" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian's nginx-light"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
    NGINX=/usr/sbin/nginx
  else
    echo "serving a class needs nginx: sudo apt-get install nginx-light" >&2
    exit 1
  fi
fi

read -r -a PORTS <<< "${DIFFLAB_REPLICA_PORTS:-}"
if [ "${#PORTS[@]}" -eq 0 ]; then
  for ((k = 1; k <= N; k++)); do PORTS+=($((PORT + k))); done
elif [ "${#PORTS[@]}" -ne "$N" ]; then
  echo "DIFFLAB_REPLICA_PORTS names ${#PORTS[@]} ports for $N replicas" >&2
  exit 2
fi
REPLICAS=()
for p in "${PORTS[@]}"; do REPLICAS+=("127.0.0.1:$p"); done

sh deploy/render-nginx.sh "$LISTEN:$PORT" "$STATE/nginx" "$STATE" "${REPLICAS[@]}" > "$STATE/nginx/nginx.conf"
"$NGINX" -t -q -p "$STATE/nginx" -c "$STATE/nginx/nginx.conf"

SECRET=${DIFFLAB_COOKIE_SECRET:-$("$PY" -c 'import secrets; print(secrets.token_hex(32))')}
# N replicas share the cores: each one's torch gets its share of threads (at least 1), not all
THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / N > 0 ? $(nproc) / N : 1 ))}
PIDS=()
declare -A NAME_OF
NGINX_PID=""
stop() {
  trap - INT TERM EXIT
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "serve_class: stopped"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for ((k = 1; k <= N; k++)); do
  p=${PORTS[k - 1]}
  STREAMLIT_SERVER_COOKIE_SECRET=$SECRET PYTHONUNBUFFERED=1 OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS \
    "$PY" -m dashboard.serve --server.address 127.0.0.1 --server.port "$p" \
    --server.headless true --browser.gatherUsageStats false > "$STATE/replica-$k.log" 2>&1 &
  PIDS+=($!)
  NAME_OF[$!]="replica $k (port $p)"
  echo $! > "$STATE/replica-$k.pid"
done
"$PY" - "${PORTS[@]}" <<'EOF'
import sys, time, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
deadline = time.monotonic() + 180
for port in sys.argv[1:]:
    while True:
        try:
            with opener.open(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"replica on port {port} not healthy after 180 s; see its log")
        time.sleep(0.2)
EOF

"$NGINX" -p "$STATE/nginx" -c "$STATE/nginx/nginx.conf" -g "daemon off;" &
NGINX_PID=$!
echo "$NGINX_PID" > "$STATE/nginx.pid"
echo "serve_class: http://$LISTEN:$PORT -> $N replicas (${REPLICAS[*]}); logs in $STATE"
[ "$LISTEN" = 127.0.0.1 ] && echo "serve_class: only this machine can connect; DIFFLAB_LISTEN=0.0.0.0 serves the room"

while true; do
  set +e
  wait -n -p DONE "$NGINX_PID" "${!NAME_OF[@]}"
  status=$?
  set -e
  if [ -z "${DONE:-}" ]; then sleep 1; continue; fi
  if [ "$DONE" = "$NGINX_PID" ]; then
    echo "serve_class: nginx exited with status $status" >&2
    exit 1
  fi
  echo "serve_class: ${NAME_OF[$DONE]:-a replica} exited with status $status; its browsers move to the others" >&2
  unset "NAME_OF[$DONE]"
  [ "${#NAME_OF[@]}" -gt 0 ] || { echo "serve_class: no replica left" >&2; exit 1; }
done
