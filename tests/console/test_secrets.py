"""Device credentials at rest: encrypted, the key generated safely, rotation without losing anything."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import select, update
from tests.console._kit import ADMIN_PASSWORD, asgi_client, login

from outband.console.config import Settings
from outband.console.db.models import Device
from outband.console.runtime import open_runtime
from outband.console.secrets import KEY_FILE_NAME, SecretBox, SecretKeyError, generate_key, rotate_credentials

PASSWORD = "Plaintext-Pw-9876"


def test_box_round_trip_and_wrong_key():
    key_a, key_b = generate_key(), generate_key()
    token = SecretBox([key_a]).encrypt(PASSWORD)
    assert PASSWORD not in token
    assert SecretBox([key_b, key_a]).decrypt(token) == PASSWORD
    with pytest.raises(SecretKeyError, match="cannot be decrypted"):
        SecretBox([key_b]).decrypt(token)
    with pytest.raises(SecretKeyError, match="#2 is not a Fernet key"):
        SecretBox([key_a, "too-short"])
    rotated = SecretBox([key_b, key_a]).rotate(token)
    assert SecretBox([key_b]).decrypt(rotated) == PASSWORD


def sqlite_bytes(url: str) -> bytes:
    """The database file and its write-ahead log, as stored on disk."""
    path = url.split("///", 1)[1]
    return b"".join(Path(path + suffix).read_bytes() for suffix in ("", "-wal") if Path(path + suffix).exists())


async def stored_tokens(runtime) -> list[str]:
    async with runtime.db.read() as session:
        return list((await session.execute(select(Device.password_enc).order_by(Device.id))).scalars())


async def add_devices(runtime, count=3) -> None:
    async with asgi_client(runtime) as client:
        await login(client, "admin", ADMIN_PASSWORD)
        for i in range(count):
            reply = await client.post("/api/devices?check=false", json={
                "name": f"pc-{i}", "host": f"192.0.2.{i + 1}", "password": f"{PASSWORD}-{i}"})
            assert reply.status_code == 201


async def test_credentials_are_encrypted_at_rest(settings):
    runtime = await open_runtime(settings)
    try:
        await add_devices(runtime)
        tokens = await stored_tokens(runtime)
        assert all(PASSWORD not in t for t in tokens)
        assert [runtime.box.decrypt(t) for t in tokens] == [f"{PASSWORD}-{i}" for i in range(3)]
    finally:
        await runtime.close()
    if settings.database_url.startswith("sqlite"):
        raw = sqlite_bytes(settings.database_url)
        assert b"192.0.2.1" in raw  # the file is readable as such ...
        assert PASSWORD.encode() not in raw  # ... but holds no password


async def test_a_key_file_is_generated_private_on_first_start(tmp_path, db_url):
    settings = Settings(data_dir=tmp_path / "data", db=db_url, admin_password=ADMIN_PASSWORD)
    runtime = await open_runtime(settings)
    key_file = tmp_path / "data" / KEY_FILE_NAME
    try:
        assert runtime.key_file == key_file
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        await add_devices(runtime, 1)
        first_id = runtime.box.key_id
    finally:
        await runtime.close()
    again = await open_runtime(settings)
    try:
        assert again.box.key_id == first_id
        assert again.box.decrypt((await stored_tokens(again))[0]) == f"{PASSWORD}-0"
    finally:
        await again.close()
    key_file.chmod(0o644)
    with pytest.raises(SecretKeyError, match="readable by others"):
        await open_runtime(settings)
    key_file.unlink()
    with pytest.raises(SecretKeyError, match="holds encrypted credentials"):
        await open_runtime(settings)
    assert not key_file.exists()  # never a fresh key for stored credentials


async def test_rotation_keeps_every_credential(tmp_path, db_url):
    old, new = generate_key(), generate_key()

    def with_keys(*keys: str) -> Settings:
        return Settings(data_dir=tmp_path / "data", db=db_url, admin_password=ADMIN_PASSWORD,
                        secret_key=",".join(keys))

    runtime = await open_runtime(with_keys(old))
    try:
        await add_devices(runtime)
        async with runtime.db.write() as session:  # one device also has its own CIRA (MPS) password
            await session.execute(update(Device).where(Device.name == "pc-0")
                                  .values(cira_password_enc=runtime.box.encrypt("cira-secret")))
    finally:
        await runtime.close()
    with pytest.raises(SecretKeyError, match="cannot be decrypted"):
        await open_runtime(with_keys(new))  # the new key alone cannot read them yet

    runtime = await open_runtime(with_keys(new, old))
    try:
        async with asgi_client(runtime) as client:
            await login(client, "admin", ADMIN_PASSWORD)
            reply = await client.post("/api/admin/rotate-secrets")
        assert reply.status_code == 200
        assert reply.json() == {"rotated": 3, "failed": [], "key_id": runtime.box.key_id}
    finally:
        await runtime.close()

    runtime = await open_runtime(with_keys(new))  # the old key is gone
    try:
        tokens = await stored_tokens(runtime)
        assert [runtime.box.decrypt(t) for t in tokens] == [f"{PASSWORD}-{i}" for i in range(3)]
        async with runtime.db.read() as session:
            cira = (await session.execute(select(Device.cira_password_enc).where(Device.name == "pc-0"))).scalar_one()
        assert runtime.box.decrypt(cira) == "cira-secret"
        with pytest.raises(SecretKeyError):
            SecretBox([old]).decrypt(tokens[0])
    finally:
        await runtime.close()


async def test_rotation_reports_what_no_key_reads(runtime):
    await add_devices(runtime, 2)
    stranger = SecretBox([generate_key()]).encrypt("lost")
    async with runtime.db.write() as session:
        device = (await session.execute(select(Device).where(Device.name == "pc-1"))).scalar_one()
        device.password_enc = stranger
        lost_id = device.id
    report = await rotate_credentials(runtime.db, runtime.box, batch=1)
    assert (report.rotated, report.failed) == (1, [lost_id])
    assert (await stored_tokens(runtime))[1] == stranger  # left as it was
