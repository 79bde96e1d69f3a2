"""Console settings, from (highest first) explicit arguments, ``OUTBAND_*`` environment variables, a TOML file
(``--config`` / ``OUTBAND_CONFIG``) and the defaults below.

The defaults run a whole console on one machine: a SQLite file and a generated secret key in the data
directory, listening on loopback only.  A PostgreSQL URL (``postgresql://...``) scales it out.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_LISTEN = "127.0.0.1:8080"

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}
"""Plain URL schemes rewritten to the async drivers the console ships with."""


def async_db_url(url: str) -> str:
    """``sqlite:///x.db`` -> ``sqlite+aiosqlite:///x.db``, ``postgresql://`` -> ``postgresql+psycopg://``;
    URLs that already name an async driver are kept."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL: {url!r} (e.g. sqlite:///console.db, postgresql://host/db)") from None
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is not None:
        parsed = parsed.set(drivername=driver)
    elif parsed.drivername not in _ASYNC_DRIVERS.values():
        raise ValueError(f"unsupported database {parsed.drivername!r}: use sqlite:// or postgresql://")
    return parsed.render_as_string(hide_password=False)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) -> (host, port)."""
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"listen address {value!r} is not HOST:PORT")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"listen address {value!r}: unbalanced brackets")
        host = host[1:-1]
        ipaddress.IPv6Address(host)
    elif ":" in host:
        raise ValueError(f"listen address {value!r}: write IPv6 addresses in brackets ([::1]:8080)")
    return host, port


class Settings(BaseSettings):
    """Every knob of the console.  Environment variables are the field names in upper case with the
    ``OUTBAND_`` prefix: ``OUTBAND_DB``, ``OUTBAND_LISTEN``, ``OUTBAND_SECRET_KEY``, ..."""

    model_config = SettingsConfigDict(env_prefix="OUTBAND_", env_ignore_empty=True, extra="ignore")

    data_dir: Path = Field(Path("outband-console"), description="Holds the SQLite file and the generated key.")
    db: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file console.db in the data dir.")
    listen: str = Field(DEFAULT_LISTEN, description="HOST:PORT of the web UI and REST API.")
    secret_key: SecretStr | None = Field(
        None, description="Fernet keys for credentials at rest, comma-separated; the first encrypts, all decrypt."
    )
    secret_key_file: Path | None = Field(
        None, description="File with the Fernet keys (one per line, first is current); default: generated "
        "secret.key in the data dir."
    )
    admin_password: SecretStr | None = Field(
        None, description="Password of the admin account the first start creates (else generated, shown once)."
    )
    session_idle_seconds: int = Field(4 * 3600, ge=60, description="A browser session ends after this idle time.")
    session_max_seconds: int = Field(24 * 3600, ge=60, description="... and at the latest after this long.")
    cookie_secure: bool | None = Field(
        None, description="Send session cookies only over HTTPS; default: when the request came over HTTPS."
    )
    login_failures_before_lockout: int = Field(5, ge=1)
    metrics_public: bool = Field(False, description="Serve /metrics without authentication.")
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    device_timeout: float = Field(15.0, gt=0, le=300, description="Seconds for one WS-MAN exchange with a device.")
    device_connect_timeout: float = Field(5.0, gt=0, le=60)
    device_concurrency: int = Field(256, ge=1, le=10_000, description="Connections to devices at once.")
    discovery_concurrency: int = Field(128, ge=1, le=4096)
    discovery_timeout: float = Field(2.0, gt=0, le=60, description="Seconds per discovery probe.")
    discovery_max_addresses: int = Field(65_536, ge=1, le=65_536, description="Largest range one scan may cover.")
    import_max_rows: int = Field(100_000, ge=1)

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("db")
    @classmethod
    def _check_db(cls, value: str | None) -> str | None:
        return None if value is None else async_db_url(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls), file_secret_settings

    @property
    def database_url(self) -> str:
        if self.db is not None:
            return self.db
        return f"sqlite+aiosqlite:///{(self.data_dir / 'console.db').resolve()}"

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment and, when given, a TOML file (keys are the field names: ``db = ...``).

    ``overrides`` with the value None are left out, so unset command-line options fall through to the
    environment.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    if config_file is None:
        return Settings(**given)
    if not config_file.is_file():
        raise ValueError(f"config file {config_file} does not exist")

    class FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=config_file)

    return FileSettings(**given)
