#!/usr/bin/env bash
# Run a command with a private MapServer 8 (WFS) and pygeoapi (OGC API - Features) on
# 127.0.0.1, then stop them.
#
#   scripts/with-gis.sh COMMAND [ARGS...]
#
# Both serve the three layers of demo/data/gis/ (scripts/gis/build_layers.py):
# communes, secteurs_collecte and communes_points.
#
# - MapServer is Debian's (cgi-mapserver, installed when missing and running as root,
#   like PostgreSQL in with-postgresql.sh), run as CGI by scripts/gis/mapserv_http.py.
#   The mapfile and the config file MapServer 8 insists on are generated from
#   scripts/gis/*.tpl. The command sees
#   PASSERELLE_TEST_WFS_URL=http://127.0.0.1:PORT/cgi-bin/mapserv?map=HAUTES_ALPES
#   (MapServer's defaults) and PASSERELLE_TEST_WFS_COUNTED_URL (…?map=HAUTES_ALPES_COUNTED,
#   the same layers with wfs_compute_number_matched: numberMatched is then known), and
#   PASSERELLE_TEST_MAPSERVER_OGCAPI_URL (…/cgi-bin/mapserv/HAUTES_ALPES/ogcapi, MapServer's
#   own OGC API - Features, a second implementation next to pygeoapi).
# - pygeoapi lives in its own virtualenv, .venv-gis/ (created once, like .venv-addok/),
#   served by gunicorn. The command sees PASSERELLE_TEST_OGCAPI_URL=http://127.0.0.1:PORT
#
# Each peer that cannot be set up (no apt, no network for pip) is left out with a
# message: the command runs without its variable and its tests are skipped. Both
# are stopped by their PID whatever the command's outcome.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${GIS_VENV:-$root/.venv-gis}
data=$root/demo/data/gis
mapserv=/usr/lib/cgi-bin/mapserv
# Flask, pydantic, shapely and pyproj pinned too: pygeoapi 0.21.0 was checked with these.
requirements="pygeoapi==0.21.0 gunicorn==23.0.0 Flask==3.1.3 pydantic==2.14.4 shapely==2.2.0 pyproj==3.7.2"

say() {
    echo "with-gis: $*" >&2
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {  # wait_for PID URL: until the URL answers 200, false if the process died
    for _ in $(seq 300); do
        if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2).read()' "$2" 2>/dev/null; then
            return 0
        fi
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# A peer that fails to start must leave its tests skipped, not pointed at a stale URL.
unset PASSERELLE_TEST_WFS_URL PASSERELLE_TEST_WFS_COUNTED_URL PASSERELLE_TEST_MAPSERVER_OGCAPI_URL \
    PASSERELLE_TEST_OGCAPI_URL

workdir=$(mktemp -d -t passerelle-gis.XXXXXX)
mapserver_pid=
pygeoapi_pid=
cleanup() {
    for pid in $pygeoapi_pid $mapserver_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$workdir"
}
trap cleanup EXIT

start_mapserver() {
    if [ ! -x "$mapserv" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            say "installing Debian's cgi-mapserver and mapserver-bin"
            if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends cgi-mapserver mapserver-bin; } >"$workdir/apt.log" 2>&1; then
                tail -n 5 "$workdir/apt.log" >&2 || true
                say "cannot install MapServer; running without it (its tests are skipped)"
                return 0
            fi
        else
            say "MapServer is not installed (apt-get install cgi-mapserver mapserver-bin); running without it (its tests are skipped)"
            return 0
        fi
    fi
    local port url ogcapi
    port=$(free_port)
    url="http://127.0.0.1:$port/cgi-bin/mapserv?map=HAUTES_ALPES"
    ogcapi="http://127.0.0.1:$port/cgi-bin/mapserv/HAUTES_ALPES/ogcapi"
    sed -e "s#@DATA@#$data#g" -e "s#@URL@#$url#g" -e "s#@NUMBER_MATCHED@#false#g" -e "s#@OGCAPI_URL@#$ogcapi#g" \
        "$root/scripts/gis/hautes-alpes.map.tpl" >"$workdir/hautes-alpes.map"
    sed -e "s#@DATA@#$data#g" -e "s#@URL@#${url}_COUNTED#g" -e "s#@NUMBER_MATCHED@#true#g" \
        -e "s#@OGCAPI_URL@#${ogcapi/HAUTES_ALPES/HAUTES_ALPES_COUNTED}#g" \
        "$root/scripts/gis/hautes-alpes.map.tpl" >"$workdir/hautes-alpes-counted.map"
    sed -e "s#@WORKDIR@#$workdir#g" "$root/scripts/gis/mapserver.conf.tpl" >"$workdir/mapserver.conf"
    MAPSERVER_CONFIG_FILE=$workdir/mapserver.conf python3 "$root/scripts/gis/mapserv_http.py" \
        --port "$port" --mapserv "$mapserv" >"$workdir/mapserv_http.log" 2>&1 &
    mapserver_pid=$!
    if ! wait_for "$mapserver_pid" "$url&SERVICE=WFS&VERSION=2.0.0&REQUEST=GetCapabilities"; then
        cat "$workdir/mapserv_http.log" "$workdir/mapserver-errors.log" >&2 2>/dev/null || true
        say "MapServer did not answer; running without it (its tests are skipped)"
        return 0
    fi
    export PASSERELLE_TEST_WFS_URL=$url PASSERELLE_TEST_WFS_COUNTED_URL=${url}_COUNTED
    export PASSERELLE_TEST_MAPSERVER_OGCAPI_URL=$ogcapi
    say "$("$mapserv" -v | awk '{print "MapServer " $3}') on $url"
}

start_pygeoapi() {
    if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$requirements" ]; then
        say "creating $venv ($requirements)"
        rm -rf "$venv"
        # shellcheck disable=SC2086
        if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet $requirements; } >"$workdir/pip.log" 2>&1; then
            tail -n 5 "$workdir/pip.log" >&2 || true
            rm -rf "$venv"
            say "cannot create $venv; running without pygeoapi (its tests are skipped)"
            return 0
        fi
        echo "$requirements" >"$venv/.installed"
    fi
    local port
    port=$(free_port)
    sed -e "s#@PORT@#$port#g" -e "s#@DATA@#$data#g" "$root/scripts/gis/pygeoapi.yml.tpl" >"$workdir/pygeoapi.yml"
    export PYGEOAPI_CONFIG=$workdir/pygeoapi.yml PYGEOAPI_OPENAPI=$workdir/openapi.yml
    if ! "$venv/bin/pygeoapi" openapi generate "$PYGEOAPI_CONFIG" --output-file "$PYGEOAPI_OPENAPI" \
        >"$workdir/openapi.log" 2>&1; then
        tail -n 5 "$workdir/openapi.log" >&2 || true
        say "pygeoapi openapi generate failed; running without pygeoapi (its tests are skipped)"
        return 0
    fi
    "$venv/bin/gunicorn" --bind "127.0.0.1:$port" --workers 2 --error-logfile "$workdir/pygeoapi.log" \
        pygeoapi.flask_app:APP >"$workdir/pygeoapi.out" 2>&1 &
    pygeoapi_pid=$!
    unset PYGEOAPI_CONFIG PYGEOAPI_OPENAPI
    if ! wait_for "$pygeoapi_pid" "http://127.0.0.1:$port/collections?f=json"; then
        cat "$workdir/pygeoapi.out" "$workdir/pygeoapi.log" >&2 || true
        say "pygeoapi did not answer; running without it (its tests are skipped)"
        return 0
    fi
    export PASSERELLE_TEST_OGCAPI_URL="http://127.0.0.1:$port"
    say "pygeoapi $("$venv/bin/python" -c 'import pygeoapi; print(pygeoapi.__version__)') on $PASSERELLE_TEST_OGCAPI_URL"
}

start_mapserver
start_pygeoapi

set +e
"$@"
status=$?
set -e
exit $status
