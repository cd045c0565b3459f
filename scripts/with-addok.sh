#!/usr/bin/env bash
# Run a command with a private addok (the BAN geocoder engine) on 127.0.0.1, then stop it.
#
#   scripts/with-addok.sh COMMAND [ARGS...]
#
# addok 1.3.2 with the French plugins lives in its own virtualenv, .venv-addok/
# (created once, like .venv/: addok pins old dependencies). The script starts a
# private redis-server on a free port, loads the BAN sample of the tests
# (tests/simulators/data/addresses-sample.csv, converted by scripts/addok/build_data.py)
# and serves addok's HTTP API with gunicorn on a free port. The command sees
# PASSERELLE_TEST_ADDOK_URL. gunicorn and Redis are stopped by their PID whatever the
# command's outcome. When the virtualenv cannot be created (no network) or Redis is
# missing, the command runs without the variable and the addok tests are skipped.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${ADDOK_VENV:-$root/.venv-addok}
# falcon and redis (the client) pinned too: addok 1.3.2 was checked with these.
requirements="addok==1.3.2 addok-fr==1.1.0 addok-france==1.2.0 falcon==4.0.2 redis==6.4.0 gunicorn==23.0.0"

run_without() {
    echo "with-addok: $1; running without addok (its tests are skipped)" >&2
    shift
    set +e
    "$@"
    exit $?
}

if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$requirements" ]; then
    echo "with-addok: creating $venv ($requirements)" >&2
    rm -rf "$venv"
    log=$(mktemp -t with-addok-pip.XXXXXX)
    # shellcheck disable=SC2086
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet $requirements; } >"$log" 2>&1; then
        tail -n 5 "$log" >&2 || true
        rm -rf "$venv" "$log"
        run_without "cannot create $venv" "$@"
    fi
    rm -f "$log"
    echo "$requirements" >"$venv/.installed"
fi

redis=$(command -v redis-server || true)
[ -n "$redis" ] || run_without "redis-server is not installed (apt-get install redis-server)" "$@"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {  # wait_for PID URL-or-port: until the port answers, false if the process died
    for _ in $(seq 200); do
        if python3 - "$2" 2>/dev/null <<'PY'; then return 0; fi
import socket, sys, urllib.request
target = sys.argv[1]
if target.startswith("http"):
    urllib.request.urlopen(target, timeout=1).read()
else:
    socket.create_connection(("127.0.0.1", int(target)), timeout=0.2).close()
PY
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

workdir=$(mktemp -d -t passerelle-addok.XXXXXX)
redis_pid=
gunicorn_pid=
cleanup() {
    for pid in $gunicorn_pid $redis_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$workdir"
}
trap cleanup EXIT

redis_port=$(free_port)
"$redis" --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$workdir" \
    --logfile "$workdir/redis.log" --daemonize no &
redis_pid=$!
if ! wait_for "$redis_pid" "$redis_port"; then
    cat "$workdir/redis.log" >&2 || true
    echo "with-addok: redis-server did not start" >&2
    exit 1
fi

export ADDOK_CONFIG_MODULE="$root/scripts/addok/config.py"
export PASSERELLE_ADDOK_REDIS_PORT=$redis_port
export PASSERELLE_ADDOK_LOG_DIR=$workdir
"$venv/bin/python" "$root/scripts/addok/build_data.py" >"$workdir/documents.ndjson"
{
    "$venv/bin/addok" reset --force
    "$venv/bin/addok" batch "$workdir/documents.ndjson"
    "$venv/bin/addok" ngrams
} >"$workdir/import.log" 2>&1 || {
    cat "$workdir/import.log" >&2
    echo "with-addok: loading the documents failed" >&2
    exit 1
}

http_port=$(free_port)
"$venv/bin/gunicorn" --bind "127.0.0.1:$http_port" --workers 2 \
    --error-logfile "$workdir/gunicorn.log" addok.http.wsgi:application >"$workdir/gunicorn.out" 2>&1 &
gunicorn_pid=$!
if ! wait_for "$gunicorn_pid" "http://127.0.0.1:$http_port/search/?q=paris"; then
    cat "$workdir/gunicorn.out" "$workdir/gunicorn.log" >&2 || true
    echo "with-addok: addok did not answer" >&2
    exit 1
fi

export PASSERELLE_TEST_ADDOK_URL="http://127.0.0.1:$http_port"
echo "with-addok: addok 1.3.2 on $PASSERELLE_TEST_ADDOK_URL ($(wc -l <"$workdir/documents.ndjson") documents)" >&2
set +e
"$@"
status=$?
set -e
exit $status
