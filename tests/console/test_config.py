"""Settings: environment, TOML file and explicit values, in that order of strength; URL and address rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from outband.console.config import Settings, async_db_url, load_settings, parse_listen


def test_defaults_run_on_one_machine(monkeypatch, tmp_path):
    for name in ("OUTBAND_DB", "OUTBAND_LISTEN", "OUTBAND_DATA_DIR", "OUTBAND_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(data_dir=tmp_path)
    assert settings.listen_address == ("127.0.0.1", 8080)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'console.db'}"
    assert settings.secret_key is None


def test_urls_get_async_drivers():
    assert async_db_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert async_db_url("postgresql://u:p@db/outband") == "postgresql+psycopg://u:p@db/outband"
    assert async_db_url("postgres://db/outband") == "postgresql+psycopg://db/outband"
    assert async_db_url("postgresql+psycopg://db/x") == "postgresql+psycopg://db/x"
    with pytest.raises(ValueError, match="unsupported"):
        async_db_url("mysql://db/x")
    with pytest.raises(ValueError, match="not a database URL"):
        async_db_url("::nonsense::")


def test_listen_addresses():
    assert parse_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_listen("[::1]:8443") == ("::1", 8443)
    for bad, message in (("8080", "not HOST:PORT"), ("host:", "not HOST:PORT"), ("::1:8080", "in brackets"),
                         ("host:70000", "out of range"), ("[::1:80", "unbalanced")):
        with pytest.raises(ValueError, match=message):
            parse_listen(bad)


def test_environment_file_and_arguments(monkeypatch, tmp_path: Path):
    config = tmp_path / "console.toml"
    config.write_text('listen = "127.0.0.1:9000"\ndb = "sqlite:///from-file.db"\nmetrics_public = true\n')
    monkeypatch.setenv("OUTBAND_DB", "postgresql://db/from-env")
    monkeypatch.setenv("OUTBAND_ADMIN_PASSWORD", "From-env-pass-1")
    settings = load_settings(config, data_dir=tmp_path, listen=None)
    assert settings.listen == "127.0.0.1:9000"  # file (argument not given)
    assert settings.db == "postgresql+psycopg://db/from-env"  # environment beats the file
    assert settings.metrics_public is True
    assert settings.admin_password is not None
    assert settings.admin_password.get_secret_value() == "From-env-pass-1"
    assert "From-env-pass-1" not in repr(settings)
    assert load_settings(config, db="sqlite:///arg.db").db == "sqlite+aiosqlite:///arg.db"  # argument beats all
    with pytest.raises(ValueError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    monkeypatch.setenv("OUTBAND_LISTEN", "nowhere")
    with pytest.raises(ValidationError):
        load_settings()
