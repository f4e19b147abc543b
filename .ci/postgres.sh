#!/usr/bin/env bash
# A throwaway PostgreSQL server for the store tests.
#
#   .ci/postgres.sh [start] [DIR]   start (or find running) a server whose files live in DIR, and print
#                                   one line to stdout:  LLAMA_TEST_POSTGRES_DSN=postgres://...
#   .ci/postgres.sh stop [DIR]      stop it (the data stays in DIR: the next start is fast)
#   .ci/postgres.sh destroy [DIR]   stop it and delete DIR
#
# DIR defaults to $LLAMA_PG_DIR, else /tmp/llama-test-postgres. The server listens on 127.0.0.1 only, on
# the first free port from 55432, with its unix socket in DIR; TCP logins need the password (scram),
# which is random per DIR. It is tuned for tests (fsync off): never keep data in it.
#
# It uses the newest /usr/lib/postgresql/*/bin (or initdb/pg_ctl on PATH); when there is none and we
# are root, it installs Debian's postgresql package. As root the server runs as the postgres user
# (initdb refuses root). Everything but the DSN line goes to stderr.
#
# From a Makefile (each recipe line is its own shell; `export $$(...)` would hide a failure):
#   dsn=$$(.ci/postgres.sh) && export "$$dsn" && go test -race ./internal/store/...; rc=$$?; .ci/postgres.sh stop; exit $$rc
set -euo pipefail

cmd=start
case "${1:-}" in
  start|stop|destroy) cmd=$1; shift ;;
esac
dir=${1:-${LLAMA_PG_DIR:-/tmp/llama-test-postgres}}
case "$dir" in
  /*) ;;
  *) dir=$PWD/$dir ;;
esac
data=$dir/data
db=llama_test
role=llama

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# find_bin sets bin to the directory of initdb and pg_ctl, or returns 1.
find_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
    bin=$d
    return 0
  fi
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    bin=$(dirname "$(command -v pg_ctl)")
    return 0
  fi
  return 1
}

# as_owner runs a command as the user that owns the cluster: postgres when we are root.
as_owner() {
  if [[ $EUID -eq 0 ]]; then
    if command -v runuser >/dev/null; then
      runuser -u postgres -- "$@"
    else
      su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
  else
    "$@"
  fi
}

running() {
  [[ -f "$data/PG_VERSION" ]] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

# port_free reports whether nothing listens on 127.0.0.1:$1.
port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

if ! find_bin; then
  [[ $cmd == start ]] || exit 0 # nothing installed, nothing to stop
  [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin); install the postgresql package, or run this as root"
  log "installing postgresql (apt-get)"
  # The package would create and start a cluster of its own; we only want the binaries.
  if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
    mkdir -p /etc/postgresql-common
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  find_bin || die "postgresql installed, but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
fi
if [[ $EUID -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root, but there is no postgres user to run the server as"
fi

case $cmd in
  stop|destroy)
    if running; then
      as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >&2
    fi
    if [[ $cmd == destroy ]]; then
      rm -rf "$dir"
    fi
    exit 0
    ;;
esac

# start.
mkdir -p "$dir"
chmod 700 "$dir"
if [[ $EUID -eq 0 ]]; then
  chown postgres: "$dir"
fi

major=$("$bin/postgres" --version | sed -E 's/^[^0-9]*([0-9]+).*/\1/')
if [[ -f "$data/PG_VERSION" && "$(cat "$data/PG_VERSION")" != "$major" ]] && ! running; then
  log "the cluster in $data is of PostgreSQL $(cat "$data/PG_VERSION"), not $major: making a new one"
  rm -rf "$data" "$dir/password"
fi
if [[ ! -f "$data/PG_VERSION" ]]; then
  rm -rf "$data"
  password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  pwfile=$dir/password
  (umask 077 && printf '%s\n' "$password" >"$pwfile")
  if [[ $EUID -eq 0 ]]; then chown postgres: "$pwfile"; fi
  locale=C
  if locale -a 2>/dev/null | grep -qix 'c.utf-\?8'; then
    locale=C.UTF-8
  fi
  log "initdb $data ($("$bin/postgres" --version))"
  as_owner "$bin/initdb" -D "$data" -U "$role" --pwfile="$pwfile" -E UTF8 --locale="$locale" \
    --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  cat >>"$data/postgresql.conf" <<EOF

# .ci/postgres.sh: a test server, loopback only, fast and unsafe.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
EOF
fi
password=$(cat "$dir/password")

if running; then
  port=$(cat "$dir/port")
else
  port=55432
  while ! port_free "$port"; do
    port=$((port + 1))
    ((port < 55532)) || die "no free port in 55432-55531"
  done
  echo "$port" >"$dir/port"
  log "starting on 127.0.0.1:$port (data $data)"
  as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 -o "-p $port" start >&2 ||
    { tail -n 20 "$dir/server.log" >&2 || true; die "pg_ctl start failed"; }
fi

psql() { as_owner "$bin/psql" -h "$dir" -p "$port" -U "$role" -X -q -v ON_ERROR_STOP=1 "$@"; }
if [[ -z $(psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'") ]]; then
  psql -d postgres -c "CREATE DATABASE $db" >&2
fi

echo "LLAMA_TEST_POSTGRES_DSN=postgres://$role:$password@127.0.0.1:$port/$db?sslmode=disable"
