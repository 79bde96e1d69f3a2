"""The console's per-device Digest cache: which targets share a nonce, the LRU bound, no second clear copy of a
password, and through the connector: the next client of a device answers at once, a wrong password never rides
on the cached nonce."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from tests.client._engine_tap import tap

from outband.aio.errors import AuthenticationError
from outband.console.db.models import Transport
from outband.console.devices.connect import DeviceConnector, DeviceTarget, DigestCache
from outband.console.metrics import ConsoleMetrics
from outband.proto.digest import Reason
from outband.testing.engine import RunningEngine, running_engine

TARGET = DeviceTarget(7, "pc-7", "10.0.0.7", "admin", "Right-password-1!")


def test_the_same_device_and_credentials_share_one_state() -> None:
    cache = DigestCache()
    state = cache.state(TARGET)
    assert cache.state(replace(TARGET, name="renamed")) is state  # the name is not how the device is reached
    assert cache.state(replace(TARGET)) is state
    assert len(cache) == 1


@pytest.mark.parametrize("change", [
    {"host": "10.0.0.8"}, {"http_port": 16000}, {"use_tls": True}, {"device_id": 8}, {"transport": Transport.CIRA},
])
def test_another_route_is_another_device(change: dict[str, object]) -> None:
    cache = DigestCache()
    state = cache.state(TARGET)
    other = cache.state(replace(TARGET, **change))  # type: ignore[arg-type]
    assert other is not state
    assert cache.state(TARGET) is state
    assert len(cache) == 2


@pytest.mark.parametrize("change", [{"password": "Other-password-1!"}, {"username": "operator"}])
def test_other_credentials_replace_the_entry(change: dict[str, str]) -> None:
    cache = DigestCache()
    state = cache.state(TARGET)
    other = cache.state(replace(TARGET, **change))  # type: ignore[arg-type]
    assert other is not state
    assert other.client is not None
    assert other.client.challenge is None
    assert len(cache) == 1
    assert cache.state(TARGET) is not state  # the old credentials' nonce is gone with them


def test_forgetting_a_device_drops_every_entry_of_it_and_only_of_it() -> None:
    cache = DigestCache()
    cache.state(TARGET)
    cache.state(replace(TARGET, use_tls=True))
    other = cache.state(replace(TARGET, device_id=8))
    cache.forget(7)
    assert len(cache) == 1
    assert cache.state(replace(TARGET, device_id=8)) is other


async def test_the_console_forgets_a_device_s_nonce_when_it_is_deleted_or_reached_anew(runtime, admin) -> None:
    digests = runtime.connector.digests
    for name in ("kept", "moved", "gone"):
        reply = await admin.post("/api/devices?check=false", json={"name": name, "host": "10.0.0.9",
                                                                  "password": "Right-password-1!"})
        digests.state(replace(TARGET, device_id=reply.json()["id"], name=name))
    ids = {d["name"]: d["id"] for d in (await admin.get("/api/devices")).json()["items"]}
    assert (await admin.patch(f"/api/devices/{ids['kept']}", json={"tags": ["lab"]})).status_code == 200
    assert len(digests) == 3  # a tag is not how the device is reached
    assert (await admin.patch(f"/api/devices/{ids['moved']}?check=false", json={"host": "10.0.0.10"})
            ).status_code == 200
    assert (await admin.delete(f"/api/devices/{ids['gone']}")).status_code == 204
    assert len(digests) == 1


def test_the_least_recently_used_device_goes_beyond_capacity() -> None:
    cache = DigestCache(capacity=2)
    first, second = cache.state(TARGET), cache.state(replace(TARGET, device_id=8))
    assert cache.state(TARGET) is first  # now the most recent
    cache.state(replace(TARGET, device_id=9))
    assert len(cache) == 2
    assert cache.state(TARGET) is first
    assert cache.state(replace(TARGET, device_id=8)) is not second
    with pytest.raises(ValueError, match="capacity"):
        DigestCache(capacity=0)


def test_the_key_holds_no_password_nor_a_plain_hash_of_it() -> None:
    cache, other = DigestCache(), DigestCache()
    cache.state(TARGET)
    other.state(TARGET)
    ((_, (username, credential, _)),) = cache._entries.items()
    ((_, (_, other_credential, _)),) = other._entries.items()
    secret = TARGET.password.encode()
    assert username == "admin"
    assert secret not in credential
    assert credential not in {hashlib.sha256(secret).digest(), hashlib.md5(secret).digest()}
    assert credential != other_credential  # keyed per cache: not comparable across processes


@pytest.fixture
async def engine_and_connector() -> AsyncIterator[tuple[RunningEngine, DeviceConnector]]:
    async with running_engine() as env:
        connector = DeviceConnector(ConsoleMetrics())
        try:
            yield env, connector
        finally:
            await connector.close()


def target_of(env: RunningEngine, password: str | None = None) -> DeviceTarget:
    return DeviceTarget(1, "pc", env.host, "admin", env.password if password is None else password,
                        http_port=env.port)


async def test_each_client_after_the_first_skips_the_challenge(
        engine_and_connector: tuple[RunningEngine, DeviceConnector]) -> None:
    env, connector = engine_and_connector
    seen = tap(env.engine)
    for _ in range(3):
        client = connector.client(target_of(env), operation="test")
        try:
            await client.get("AMT_GeneralSettings")
        finally:
            await client.close()
    assert seen.reasons == [Reason.MISSING, Reason.OK, Reason.OK, Reason.OK]
    assert seen.nonce_counts == [1, 2, 3]


async def test_a_wrong_password_never_uses_the_cached_nonce(
        engine_and_connector: tuple[RunningEngine, DeviceConnector]) -> None:
    env, connector = engine_and_connector
    seen = tap(env.engine)
    right = connector.client(target_of(env))
    await right.get("AMT_GeneralSettings")
    await right.close()
    for attempt in (1, 2):
        wrong = connector.client(target_of(env, "Wrong-password-1!"))
        with pytest.raises(AuthenticationError, match="credentials refused"):
            await wrong.get("AMT_GeneralSettings")
        await wrong.close()
        assert seen.reasons[2:] == [Reason.MISSING, Reason.BAD_CREDENTIALS] * attempt  # bare first, as ever
        assert len(seen.failures) == attempt
