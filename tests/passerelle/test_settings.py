from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from passerelle.settings import Settings


def test_defaults_use_sqlite_under_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("PASSERELLE_DATABASE_URL", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/passerelle.sqlite3"
    assert settings.should_auto_migrate


def test_postgresql_urls_get_the_async_driver():
    settings = Settings(database_url="postgresql://u:p@db/hub")
    assert settings.resolved_database_url == "postgresql+asyncpg://u:p@db/hub"
    assert not settings.should_auto_migrate


def test_environment_wins_over_the_file(monkeypatch, tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("port: 9000\nhost: 0.0.0.0\nadmin_tokens: [a, b]\n")
    monkeypatch.setenv("PASSERELLE_PORT", "9100")
    settings = Settings.load(path)
    assert settings.port == 9100
    assert settings.host == "0.0.0.0"
    assert [t.get_secret_value() for t in settings.admin_tokens] == ["a", "b"]


def test_comma_separated_tokens_from_the_environment(monkeypatch):
    monkeypatch.setenv("PASSERELLE_ADMIN_TOKENS", "tok-alpha, tok-beta")
    assert [t.get_secret_value() for t in Settings().admin_tokens] == ["tok-alpha", "tok-beta"]
    assert "tok-alpha" not in repr(Settings())


def test_unknown_setting_in_a_file_is_refused(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("prot: 9000\n")
    with pytest.raises(ValidationError, match="prot"):
        Settings.load(path)


def test_unreadable_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read settings file"):
        Settings.load(Path(tmp_path / "missing.yaml"))
