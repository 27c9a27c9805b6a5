# Throwaway back-end services for tests and benchmarks: a PostgreSQL cluster and an
# S3-compatible server (moto), both on loopback ports, both removed by `stop_services`.
# Source this file; it needs the repository's .venv (created by ensure_venv).
#
#   start_postgres [fsync]   exports CUBBY_TEST_PG_URL  (fsync: "on" for benchmarks, default off)
#   start_s3                 exports CUBBY_TEST_S3_URL and the AWS_* credentials
#   stop_services

services_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
services_tmp=""
pg_bin=""

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # PORT SECONDS
    python3 - "$1" "$2" <<'PY'
import socket, sys, time
port, deadline = int(sys.argv[1]), time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

ensure_venv() {
    local venv="$services_root/.venv" req="$services_root/scripts/requirements-services.txt"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    local stamp="$venv/.services-requirements.sha256" want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
        echo "$want" > "$stamp"
    fi
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
    local fsync="${1:-off}"
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        echo "installing PostgreSQL (Debian package postgresql)" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    [ -n "$services_tmp" ] || services_tmp="$(mktemp -d "${TMPDIR:-/tmp}/cubby-services.XXXXXX")"
    mkdir -p "$services_tmp/pg"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$services_tmp/pg" && chmod 755 "$services_tmp"
    local port
    port="$(free_port)"
    # initdb refuses to run as root; Debian's postgres user runs it.
    as_postgres "$pg_bin/initdb" -D "$services_tmp/pg/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
    as_postgres "$pg_bin/pg_ctl" -D "$services_tmp/pg/data" -l "$services_tmp/pg/log" -w -t 60 \
        -o "-p $port -k $services_tmp/pg -c listen_addresses=127.0.0.1 -c fsync=$fsync -c max_connections=400" \
        start >/dev/null
    export CUBBY_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "PostgreSQL on 127.0.0.1:$port (fsync=$fsync)" >&2
}

# A shell command that restarts the cluster (for the database-restart failure test).
pg_restart_command() {
    local ctl="$pg_bin/pg_ctl -D $services_tmp/pg/data -l $services_tmp/pg/log -m fast -w restart"
    if [ "$(id -u)" = 0 ]; then echo "runuser -u postgres -- $ctl"; else echo "$ctl"; fi
}

start_s3() {
    ensure_venv
    [ -n "$services_tmp" ] || services_tmp="$(mktemp -d "${TMPDIR:-/tmp}/cubby-services.XXXXXX")"
    local port
    port="$(free_port)"
    "$services_root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$services_tmp/moto.log" 2>&1 &
    echo $! > "$services_tmp/moto.pid"
    wait_port "$port" 60 || { cat "$services_tmp/moto.log" >&2; return 1; }
    export AWS_ACCESS_KEY_ID=cubby AWS_SECRET_ACCESS_KEY=cubby-secret AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    curl -sf -X PUT "http://127.0.0.1:$port/cubby-test" >/dev/null
    export CUBBY_TEST_S3_URL="s3://cubby-test?endpoint=http://127.0.0.1:$port&region=us-east-1"
    echo "S3 (moto) on 127.0.0.1:$port" >&2
}

stop_services() {
    [ -n "$services_tmp" ] || return 0
    if [ -f "$services_tmp/moto.pid" ]; then kill "$(cat "$services_tmp/moto.pid")" 2>/dev/null || true; fi
    if [ -n "$pg_bin" ] && [ -d "$services_tmp/pg/data" ]; then
        as_postgres "$pg_bin/pg_ctl" -D "$services_tmp/pg/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$services_tmp"
    services_tmp=""
}
