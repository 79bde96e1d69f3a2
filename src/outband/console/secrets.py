"""Device credentials at rest: Fernet tokens under the console's secret key, with rotation.

Keys come from ``OUTBAND_SECRET_KEY`` (comma-separated), else ``OUTBAND_SECRET_KEY_FILE`` (one per line),
else ``secret.key`` in the data directory, generated (mode 0600) on the first start.  The first key encrypts;
every key listed decrypts.  Rotating is: put a new key first and keep the old one after it, restart, run
:func:`rotate_credentials` (``outband console rotate-key``), then drop the old key.

A console must never quietly start with a key that cannot read what it stored: :func:`check_key` tries one
stored credential, and no key file is generated for a database that already holds credentials.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import BaseModel
from sqlalchemy import func, select, update

from .config import Settings
from .db.database import Database
from .db.models import Device
from .logs import register_secret

KEY_FILE_NAME: Final = "secret.key"
ROTATE_BATCH: Final = 500


_Message = TypeVar("_Message", bound=BaseModel)


class SecretKeyError(Exception):
    """The secret key is missing, malformed or does not fit the stored credentials."""


class SecretBox:
    """Encrypts and decrypts short secrets (device passwords) with a list of Fernet keys, first is current."""

    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise SecretKeyError("no secret key given")
        fernets: list[Fernet] = []
        for index, key in enumerate(keys, 1):
            register_secret(key.decode("ascii", "replace") if isinstance(key, bytes) else key)
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise SecretKeyError(
                    f"secret key #{index} is not a Fernet key (32 url-safe base64-encoded bytes; make one with "
                    "`outband console generate-key`)"
                ) from None
        self._fernet = MultiFernet(fernets)
        self._primary = fernets[0]
        first = keys[0].encode() if isinstance(keys[0], str) else keys[0]
        self.key_id = hashlib.sha256(first.strip()).hexdigest()[:8]
        """Names the current key in logs and reports without revealing it."""
        self.key_count = len(fernets)

    def encrypt(self, secret: str, *, now: int | None = None) -> str:
        """A token of the secret under the current key (stamped ``now``, by default the present)."""
        if now is not None:
            return self._primary.encrypt_at_time(secret.encode(), now).decode("ascii")
        return self._primary.encrypt(secret.encode()).decode("ascii")

    def decrypt(self, token: str, *, ttl: int | None = None, now: int | None = None) -> str:
        """The secret (``ttl``: only from a token made at most that many seconds before ``now``, by default the
        present)."""
        try:
            if ttl is not None and now is not None:
                return self._fernet.decrypt_at_time(token.encode("ascii"), ttl, now).decode()
            return self._fernet.decrypt(token.encode("ascii"), ttl=ttl).decode()
        except (InvalidToken, UnicodeError):
            raise SecretKeyError("a stored credential cannot be decrypted with any configured key") from None

    def seal(self, message: BaseModel, *, now: int | None = None) -> str:
        """A message as a token that only holders of the key can make or read (a node relay request, a redirect
        ticket), stamped ``now`` (by default the present)."""
        return self.encrypt(message.model_dump_json(), now=now)

    def unseal(self, token: str, kind: type[_Message], *, ttl: int, now: int | None = None) -> _Message:
        """The ``kind`` message a token carries, if a holder of the key sealed it at most ``ttl`` seconds before
        ``now``; :class:`SecretKeyError` for anything else (a forged, stale or malformed token)."""
        try:
            return kind.model_validate_json(self.decrypt(token, ttl=ttl, now=now))
        except (UnicodeError, ValueError):  # pydantic's ValidationError is a ValueError
            raise SecretKeyError(f"not a {kind.__name__} sealed with this console's key") from None

    def rotate(self, token: str) -> str:
        """The same secret encrypted under the current key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise SecretKeyError("a stored credential cannot be decrypted with any configured key") from None


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


def parse_keys(text: str) -> list[str]:
    """Keys separated by commas or new lines; blank lines and ``#`` comments are skipped."""
    keys: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        keys.extend(part.strip() for part in line.split(",") if part.strip())
    return keys


def default_key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE_NAME


def load_box(settings: Settings, *, may_generate: bool) -> tuple[SecretBox, Path | None]:
    """The box the settings name, and the key file it came from (None for the environment).

    ``may_generate`` permits writing a fresh key file when neither the environment nor a file names one
    (the caller allows it only for a database without credentials)."""
    if settings.secret_key is not None:
        return SecretBox(parse_keys(settings.secret_key.get_secret_value())), None
    path = settings.secret_key_file
    if path is not None:
        if not path.is_file():
            raise SecretKeyError(f"secret key file {path} does not exist")
        return SecretBox(parse_keys(_read_private(path))), path
    path = default_key_file(settings)
    if not path.exists():
        if not may_generate:
            raise SecretKeyError(
                f"no secret key: {path} is missing but the database holds encrypted credentials; restore the key "
                "file or set OUTBAND_SECRET_KEY / OUTBAND_SECRET_KEY_FILE"
            )
        _write_private(path, generate_key() + "\n")
    return SecretBox(parse_keys(_read_private(path))), path


def _read_private(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & 0o077:
        raise SecretKeyError(f"secret key file {path} is readable by others (mode {mode & 0o777:o}); chmod 600 it")
    return path.read_text()


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(content)


async def stored_credentials(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.count()).select_from(Device))).scalar_one())


async def check_key(db: Database, box: SecretBox) -> None:
    """Refuse a key that cannot decrypt the stored credentials (one is tried)."""
    async with db.read() as session:
        token = (await session.execute(select(Device.password_enc).limit(1))).scalar_one_or_none()
    if token is not None:
        box.decrypt(token)


@dataclass
class RotationReport:
    rotated: int = 0
    failed: list[int] = field(default_factory=list)
    """Devices whose credential no configured key decrypts (left as they were)."""


async def rotate_credentials(db: Database, box: SecretBox, *, batch: int = ROTATE_BATCH) -> RotationReport:
    """Re-encrypt every device credential under the current key, in short transactions of ``batch`` devices.

    Safe to interrupt and run again: each row is rewritten whole, and a credential already under the current
    key is simply encrypted again."""
    report = RotationReport()
    last_id = 0
    while True:
        async with db.write() as session:
            rows = (await session.execute(
                select(Device.id, Device.password_enc, Device.cira_password_enc)
                .where(Device.id > last_id).order_by(Device.id).limit(batch)
            )).all()
            for device_id, token, cira_token in rows:
                try:
                    values = {"password_enc": box.rotate(token)}
                    if cira_token is not None:  # a device's own CIRA (MPS) password is a credential too
                        values["cira_password_enc"] = box.rotate(cira_token)
                except SecretKeyError:
                    report.failed.append(device_id)
                    continue
                await session.execute(update(Device).where(Device.id == device_id).values(**values))
                report.rotated += 1
        if len(rows) < batch:
            return report
        last_id = rows[-1][0]
