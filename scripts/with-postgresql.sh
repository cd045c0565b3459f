#!/usr/bin/env bash
# Run a command with a private PostgreSQL server on 127.0.0.1, then stop it.
#
#   scripts/with-postgresql.sh COMMAND [ARGS...]
#
# The server lives in a temporary directory, listens on a free port and is
# stopped (and its directory removed) whatever the command's outcome. The command
# sees PASSERELLE_TEST_POSTGRESQL_URL. Debian's postgresql is installed if missing.
set -euo pipefail

find_bindir() {
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

bindir=$(find_bindir || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "with-postgresql: installing Debian's postgresql" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bindir=$(find_bindir)
    else
        echo "with-postgresql: PostgreSQL is not installed (apt-get install postgresql)" >&2
        exit 1
    fi
fi

workdir=$(mktemp -d -t passerelle-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# PostgreSQL refuses to run as root: run it as the postgres user when we are root.
as_owner=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$workdir"
    as_owner=(runuser -u postgres --)
fi

cleanup() {
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$workdir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$workdir"
}
trap cleanup EXIT

"${as_owner[@]}" "$bindir/initdb" -D "$workdir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
"${as_owner[@]}" "$bindir/pg_ctl" -D "$workdir/data" -l "$workdir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $workdir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
"${as_owner[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres passerelle_test

export PASSERELLE_TEST_POSTGRESQL_URL="postgresql+asyncpg://postgres@127.0.0.1:$port/passerelle_test"
echo "with-postgresql: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
set +e
"$@"
status=$?
set -e
exit $status
