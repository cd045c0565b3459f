"""`passerelle base-adresse …`, a command registered through the passerelle.commands entry point,
run as an operator would: in a subprocess, on SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from tests.connectors.sig.baseadresse.conftest import SAMPLE


def run(env, *args):
    return subprocess.run([sys.executable, "-m", "passerelle.cli", *args], env=env, capture_output=True, text=True)


def test_build_index_then_status(tmp_path):
    env = {**os.environ, "PASSERELLE_DATA_DIR": str(tmp_path / "var")}
    env.pop("PASSERELLE_DATABASE_URL", None)
    document = {
        "instances": [
            {"type": "base-adresse", "slug": "ville", "title": "Adresses", "config": {"sources": [str(SAMPLE)]}},
            {"type": "base-adresse", "slug": "distant", "title": "Distant", "config": {"backends": ["remote"]}},
        ]
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    assert run(env, "migrate").returncode == 0
    assert run(env, "import", str(tmp_path / "config.yaml")).returncode == 0

    built = run(env, "base-adresse", "build-index", "base-adresse/ville")
    assert built.returncode == 0, built.stderr
    assert "347 house numbers indexed" in built.stdout
    again = run(env, "base-adresse", "build-index", "base-adresse/ville")
    assert "no source changed" in again.stdout
    forced = run(env, "base-adresse", "build-index", "base-adresse/ville", "--force")
    assert "347 house numbers indexed" in forced.stdout

    status = run(env, "base-adresse", "index-status", "base-adresse/ville")
    assert status.returncode == 0, status.stderr
    index = json.loads(status.stdout[status.stdout.index("{") :])["index"]
    assert (index["state"], index["addresses"], index["sources"]) == ("ready", 347, [str(SAMPLE)])

    remote_only = run(env, "base-adresse", "build-index", "base-adresse/distant")
    assert remote_only.returncode == 1
    assert "has no embedded index" in remote_only.stderr
    unknown = run(env, "base-adresse", "build-index", "base-adresse/nope")
    assert unknown.returncode == 1
    assert "no base-adresse instance named 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr + remote_only.stderr
