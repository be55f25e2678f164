#!/bin/sh
# Check the rendered config with `nginx -t`, then run nginx in the foreground with it.
set -eu
dir="${GATEWAY_DIR:-/srv/paddle-canary/gateway}"
conf="$dir/nginx.conf"
if [ ! -s "$conf" ]; then
  echo "gateway-entrypoint: $conf is missing (the init service renders it)" >&2
  exit 1
fi
mkdir -p "$dir/logs"
nginx -t -q -e "$dir/logs/error.log" -c "$conf"
exec nginx -e "$dir/logs/error.log" -c "$conf"
