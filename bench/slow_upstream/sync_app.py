"""The synchronous baseline, built the way Passerelle is served: a WSGI view calling the
business application with ``requests`` (one session per worker thread, as a connector
holding a ``requests.Session`` would), under gunicorn's gthread workers (2 processes x 4
threads, Passerelle's packaging default).

    UPSTREAM_URL=http://127.0.0.1:8100/item gunicorn -k gthread -w 2 --threads 4 sync_app:app
"""

from __future__ import annotations

import json
import os
import threading

import requests
from flask import Flask, Response

UPSTREAM_URL = os.environ["UPSTREAM_URL"]
app = Flask(__name__)
local = threading.local()


def session() -> requests.Session:
    if not hasattr(local, "session"):
        local.session = requests.Session()
    return local.session


@app.get("/sync/proxy/fetch")
def fetch() -> Response:
    answer = session().get(UPSTREAM_URL, timeout=25)
    answer.raise_for_status()
    body = json.dumps({"err": 0, "data": answer.json()})
    return Response(body, content_type="application/json")
