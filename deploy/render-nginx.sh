#!/bin/sh
# Render deploy/nginx.conf.template to stdout (POSIX sh + sed: runs in the nginx image too).
# Usage: render-nginx.sh LISTEN PREFIX LOGS REPLICA...
#   LISTEN   what nginx listens on: 127.0.0.1:8501, 8080, [::]:80 ...
#   PREFIX   a folder for nginx's pid and (unused) temp paths
#   LOGS     a folder for access.log and error.log, or - for stdout/stderr (containers)
#   REPLICA  host:port of each Streamlit replica, in order (r1, r2, ...); every port must differ,
#            because nginx tells replicas apart by the port of the address that answered
# DIFFLAB_HTPASSWD=/path/to/htpasswd adds HTTP basic authentication in front of everything.
set -eu
[ $# -ge 4 ] || { echo "usage: $0 LISTEN PREFIX LOGS REPLICA..." >&2; exit 2; }
listen=$1 prefix=$2 logs=$3
shift 3
template=${DIFFLAB_NGINX_TEMPLATE:-$(dirname "$0")/nginx.conf.template}
if [ "$logs" = "-" ]; then access=/dev/stdout error=stderr; else access=$logs/access.log error=$logs/error.log; fi

routes="" served="" keep="" upstreams="" new="" k=0 ports=" "
for r in "$@"; do
    k=$((k + 1))
    port=${r##*:}
    case "$port" in ''|*[!0-9]*) echo "replica $r: expected host:port" >&2; exit 2 ;; esac
    case "$ports" in *" $port "*) echo "replica $r: port $port is used twice" >&2; exit 2 ;; esac
    ports="$ports$port "
    routes="$routes        r$k difflab_r$k;\n"
    served="$served        \"~:$port\$\" r$k;\n"
    keep="$keep        \"r$k>r$k\" \"\";\n"
    new="$new        server $r max_fails=1 fail_timeout=10s;\n"
done
k=0
for r in "$@"; do
    k=$((k + 1))
    upstreams="$upstreams    upstream difflab_r$k {\n        zone difflab_r$k 64k;\n"
    upstreams="$upstreams        server $r max_fails=1 fail_timeout=10s;\n"
    for o in "$@"; do
        [ "$o" = "$r" ] || upstreams="$upstreams        server $o backup;\n"
    done
    upstreams="$upstreams    }\n"
done
upstreams="    upstream difflab_new {\n        zone difflab_new 64k;\n$new    }\n$upstreams"
# values go into a sed replacement: escape its specials
esc() { printf '%s' "$1" | sed -e 's/[|&\\]/\\&/g'; }
listen=$(esc "$listen") prefix=$(esc "$prefix") access=$(esc "$access") error=$(esc "$error")
auth=""
if [ -n "${DIFFLAB_HTPASSWD:-}" ]; then
    auth="        auth_basic \"Diffusion Lab\";\n        auth_basic_user_file $DIFFLAB_HTPASSWD;\n"
fi

# one placeholder per line: swap it for its block (printf turns the \n into lines)
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
        @ROUTES@) printf "%b" "$routes" ;;
        @SERVED_BY@) printf "%b" "$served" ;;
        @KEEP@) printf "%b" "$keep" ;;
        @UPSTREAMS@) printf "%b" "$upstreams" ;;
        @AUTH@) printf "%b" "$auth" ;;
        *) printf '%s\n' "$line" | sed -e "s|@LISTEN@|$listen|g" -e "s|@PREFIX@|$prefix|g" \
               -e "s|@ACCESS_LOG@|$access|g" -e "s|@ERROR_LOG@|$error|g" ;;
    esac
done < "$template"
