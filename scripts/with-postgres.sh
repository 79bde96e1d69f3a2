#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster: initdb into a temporary directory, start it on
# 127.0.0.1 on a free port (no Unix socket shared with anything else), create the database "outband", export
# OUTBAND_TEST_DB=postgresql://outband@127.0.0.1:PORT/outband, run the command, then stop the cluster and
# delete it.  Any failure to set the cluster up fails loudly (exit status 2) before the command runs.
#   bash scripts/with-postgres.sh .venv/bin/python -m pytest tests/console
# Needs Debian's postgresql package (scripts/setup.sh --dev installs it).  As root, the cluster runs as the
# "postgres" user (PostgreSQL refuses to run as root).
set -euo pipefail

fail() { echo "with-postgres: $*" >&2; exit 2; }
[ "$#" -gt 0 ] || fail "usage: with-postgres.sh COMMAND [ARGS...]"

bindir="${PG_BINDIR:-}"
if [ -z "$bindir" ]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] || fail "PostgreSQL server binaries not found (apt-get install postgresql)"

run_as=()
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || fail "running as root needs the postgres user (from the postgresql package)"
    run_as=(runuser -u postgres --)
fi

workdir=$(mktemp -d /tmp/outband-pg.XXXXXX)
cleanup() {
    "${run_as[@]}" "$bindir/pg_ctl" -D "$workdir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$workdir"
}
trap cleanup EXIT
[ "${#run_as[@]}" -eq 0 ] || chown postgres: "$workdir"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${run_as[@]}" "$bindir/initdb" -D "$workdir/data" -U outband --auth=trust -E UTF8 --no-locale >"$workdir/initdb.log" 2>&1 \
    || { cat "$workdir/initdb.log" >&2; fail "initdb failed"; }
"${run_as[@]}" "$bindir/pg_ctl" -D "$workdir/data" -l "$workdir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $workdir -c fsync=off -c synchronous_commit=off -c max_connections=200" \
    start >/dev/null || { cat "$workdir/server.log" >&2; fail "PostgreSQL did not start"; }
"${run_as[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U outband outband || fail "createdb failed"

export OUTBAND_TEST_DB="postgresql://outband@127.0.0.1:$port/outband"
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') at $OUTBAND_TEST_DB"
status=0
"$@" || status=$?
exit $status
