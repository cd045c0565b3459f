#!/usr/bin/env bash
# Run a command with a private Redis server on 127.0.0.1, then stop it.
#
#   scripts/with-redis.sh COMMAND [ARGS...]
#
# The server listens on a free port, keeps nothing on disk (no RDB snapshot, no
# append-only file), lives in a temporary directory and is stopped by its PID
# whatever the command's outcome. The command sees PASSERELLE_TEST_REDIS_URL.
# Debian's redis-server is installed if missing (when running as root).
set -euo pipefail

binary=$(command -v redis-server || true)
if [ -z "$binary" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "with-redis: installing Debian's redis-server" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
        binary=$(command -v redis-server)
    else
        echo "with-redis: redis-server is not installed (apt-get install redis-server)" >&2
        exit 1
    fi
fi

workdir=$(mktemp -d -t passerelle-redis.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

"$binary" --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$workdir" \
    --logfile "$workdir/redis.log" --daemonize no &
pid=$!

cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$workdir"
}
trap cleanup EXIT

for _ in $(seq 100); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), timeout=0.2)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "with-redis: redis-server exited:" >&2
        cat "$workdir/redis.log" >&2 || true
        exit 1
    fi
    sleep 0.1
done

export PASSERELLE_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
echo "with-redis: $("$binary" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
set +e
"$@"
status=$?
set -e
exit $status
