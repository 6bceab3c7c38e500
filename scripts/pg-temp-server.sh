#!/bin/bash
# Starts a throwaway PostgreSQL server (Debian's postgresql package) in DIR, listening only
# on a Unix socket in DIR at PORT, as an unprivileged user (postgres when run as root), and
# prints its URL; `stop DIR` stops it. For the tests of PostgreSQL stores and for trying them.
#
#   url=$(bash scripts/pg-temp-server.sh start /tmp/pg 55432)   # postgresql://...
#   bash scripts/pg-temp-server.sh stop /tmp/pg
#
# Exit 77 when no PostgreSQL server binaries are installed (apt-get install postgresql).
set -euo pipefail
cmd=${1:-} dir=${2:-}
port=${3:-55432}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR [PORT]" >&2
  exit 2
fi
bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "pg-temp-server: no PostgreSQL server binaries (apt-get install postgresql)" >&2
  exit 77
fi
as=()
user=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
  as=(runuser -u postgres --)
  user=postgres
fi
case $cmd in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U "$user" --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-k $dir -p $port -c listen_addresses= -c fsync=off" start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql://$user@/postgres?host=$dir&port=$port"
    ;;
  stop)
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac
