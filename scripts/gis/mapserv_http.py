"""Serve Debian's MapServer CGI binary over HTTP on 127.0.0.1, one CGI run per request.

    MAPSERVER_CONFIG_FILE=/abs/mapserver.conf python3 scripts/gis/mapserv_http.py --port 5080

The test peer of scripts/with-gis.sh. MapServer is a CGI program; rather than pull in
Apache or lighttpd, this stdlib server plays the web server's part of RFC 3875:
requests under ``--prefix`` (``/cgi-bin/mapserv`` by default, the usual deployment
URL) run ``mapserv`` with QUERY_STRING, REQUEST_METHOD, CONTENT_TYPE/CONTENT_LENGTH
and the body on stdin, and its ``Status:`` and headers become the HTTP response.
MapServer 8 needs MAPSERVER_CONFIG_FILE: it is passed on from this process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What the CGI process sees of our environment; the rest stays out, as under a web server.
PASSED_ON = ("MAPSERVER_CONFIG_FILE", "PATH", "PROJ_DATA", "PROJ_LIB", "GDAL_DATA", "LANG", "TZ")


def parse_cgi_output(output: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """The status, headers and body of a CGI response (RFC 3875 §6)."""
    head, separator, body = output.partition(b"\r\n\r\n")
    if not separator:
        head, separator, body = output.partition(b"\n\n")
    if not separator:
        return 502, [("Content-Type", "text/plain")], b"mapserv wrote no CGI header\n"
    status = 200
    headers = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.split()[0])
        elif name.strip():
            headers.append((name.strip(), value.strip()))
    return status, headers, body


class Handler(BaseHTTPRequestHandler):
    server: MapservServer

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self.run_cgi()

    def do_POST(self) -> None:
        self.run_cgi()

    def run_cgi(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        prefix = self.server.prefix
        if url.path != prefix and not url.path.startswith(prefix + "/"):
            self.send_error(404, f"MapServer is under {prefix}")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        host, port = self.server.server_address[:2]
        environment = {name: os.environ[name] for name in PASSED_ON if name in os.environ}
        environment.update(
            GATEWAY_INTERFACE="CGI/1.1",
            SERVER_SOFTWARE="passerelle-mapserv-http",
            SERVER_NAME=str(host),
            SERVER_PORT=str(port),
            SERVER_PROTOCOL="HTTP/1.1",
            REQUEST_METHOD=self.command,
            SCRIPT_NAME=prefix,
            PATH_INFO=url.path[len(prefix) :],
            QUERY_STRING=url.query,
            REMOTE_ADDR=self.client_address[0],
            HTTP_HOST=self.headers.get("Host", f"{host}:{port}"),
        )
        if self.command == "POST":
            environment["CONTENT_TYPE"] = self.headers.get("Content-Type", "")
            environment["CONTENT_LENGTH"] = str(len(body))
        try:
            completed = subprocess.run(
                [self.server.mapserv], input=body, env=environment, capture_output=True, timeout=60, check=False
            )
        except subprocess.TimeoutExpired:
            self.send_error(504, "mapserv took more than 60 s")
            return
        if completed.stderr and self.server.verbose:
            sys.stderr.write(completed.stderr.decode("utf-8", "replace"))
        status, headers, payload = parse_cgi_output(completed.stdout)
        self.send_response(status)
        for name, value in headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class MapservServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, mapserv: str, prefix: str, verbose: bool) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.mapserv = mapserv
        self.prefix = prefix.rstrip("/")
        self.verbose = verbose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mapserv", default="/usr/lib/cgi-bin/mapserv")
    parser.add_argument("--prefix", default="/cgi-bin/mapserv")
    parser.add_argument("--verbose", action="store_true", help="log requests and mapserv's stderr")
    args = parser.parse_args()
    if not os.environ.get("MAPSERVER_CONFIG_FILE"):
        parser.error("MAPSERVER_CONFIG_FILE is not set: MapServer 8 refuses to run without it")
    MapservServer(args.port, args.mapserv, args.prefix, args.verbose).serve_forever()


if __name__ == "__main__":
    main()
