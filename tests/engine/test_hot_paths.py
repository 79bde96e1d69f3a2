"""The Get path's shortcuts keep their promises: AMT's chunked reply framing, ACL memos that never outlive the
stored entry (nor a rolled-back change), settings instances that follow every change and stay private to their
caller, and state key listings that see a transaction's own writes."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from outband.engine.acl import Account
from outband.engine.services.general import GENERAL
from outband.engine.settings import MEMO_SIZE, SettingsClass
from outband.engine.state import Database, StateStore
from outband.proto.amt import Realm
from outband.proto.cim.model import CimObject
from outband.proto.digest import DigestClient, ha1
from outband.proto.wsman import messages as msg
from outband.proto.wsman import parse_envelope
from outband.testing.engine import RunningEngine


async def raw_exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read()  # the engine closes the connection (Connection: close was asked for)
    finally:
        writer.close()
        await writer.wait_closed()


def post(body: bytes, authorization: str | None = None) -> bytes:
    head = ("POST /wsman HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            "Content-Type: application/soap+xml;charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\n")
    if authorization is not None:
        head += f"Authorization: {authorization}\r\n"
    return head.encode() + b"\r\n" + body


async def test_replies_go_out_chunked_with_amts_headers(engine_env: RunningEngine) -> None:
    body = msg.get("AMT_GeneralSettings").to_bytes()
    challenge_reply = await raw_exchange(engine_env.port, post(body))
    head = challenge_reply.split(b"\r\n\r\n", 1)[0].decode()
    challenge = next(line.split(": ", 1)[1] for line in head.split("\r\n") if line.startswith("WWW-Authenticate"))
    client = DigestClient("admin", engine_env.password)
    client.handle_challenge(challenge)

    answer = await raw_exchange(engine_env.port, post(body, client.authorization("POST", "/wsman", body)))
    head_bytes, _, framed = answer.partition(b"\r\n\r\n")
    status, *header_lines = head_bytes.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in header_lines)}
    assert status == "HTTP/1.1 200 OK"
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    assert headers["content-type"] == "application/soap+xml; charset=UTF-8"
    assert headers["server"] == engine_env.engine.server_header
    assert headers["x-frame-options"] == "DENY"
    size_line, _, rest = framed.partition(b"\r\n")
    size = int(size_line, 16)
    assert rest[size:] == b"\r\n0\r\n\r\n"  # one chunk holding the whole envelope, then the last chunk
    reply = parse_envelope(rest[:size])
    assert isinstance(reply.body, CimObject)
    assert reply.body["HostName"] == engine_env.engine.config.hostname


async def test_faults_keep_the_chunked_framing_and_status(engine_env: RunningEngine) -> None:
    body = msg.get("AMT_NoSuchClass").to_bytes()
    transport = engine_env.transport()
    status, _ = await transport.post(msg.get("AMT_GeneralSettings").to_bytes())  # earn a challenge
    assert status == 200
    digest = transport._digest.client
    assert digest is not None
    answer = await raw_exchange(engine_env.port, post(body, digest.authorization("POST", "/wsman", body)))
    head = answer.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 400 ")
    assert "Transfer-Encoding: chunked" in head
    assert answer.endswith(b"\r\n0\r\n\r\n")


def _user(handle: int, name: str, realm: str, realms: frozenset[Realm] = frozenset()) -> Account:
    return Account(handle, name, ha1(name, realm, "Passw0rd!"), realms)


def rolled_back(store: StateStore, change: Callable[[], None]) -> None:
    """Make ``change`` inside a transaction that then fails, so it rolls back."""
    def failing_transaction() -> None:
        with store.transaction():
            change()
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        failing_transaction()


async def test_account_lookups_follow_every_change_and_rollback(engine_env: RunningEngine) -> None:
    accounts = engine_env.engine.accounts
    realm = engine_env.engine.realm
    accounts.save(_user(3, "alice", realm, frozenset({Realm.HARDWARE_ASSET})))
    first = accounts.by_name("alice")
    assert first is not None
    assert first.realms == {Realm.HARDWARE_ASSET}
    assert accounts.by_name("alice") is first  # memoised while the stored entry stands

    accounts.save(dataclasses.replace(first, realms=frozenset({Realm.REDIRECTION})))
    changed = accounts.by_name("alice")
    assert changed is not None
    assert changed.realms == {Realm.REDIRECTION}

    def disable() -> None:
        accounts.save(dataclasses.replace(changed, enabled=False))
        inside = accounts.by_name("alice")
        assert inside is not None
        assert not inside.enabled  # the transaction sees its own change

    rolled_back(engine_env.engine.store, disable)
    after = accounts.by_name("alice")
    assert after is not None
    assert after.enabled
    assert after.realms == {Realm.REDIRECTION}
    assert accounts.ha1("alice") == after.ha1

    accounts.remove(3)
    assert accounts.by_name("alice") is None
    assert accounts.by_handle(3) is None
    assert accounts.ha1("alice") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        after.enabled = False  # type: ignore[misc]  # shared memo: nobody may change it in place


async def test_settings_instances_follow_changes_and_are_private_copies(engine_env: RunningEngine) -> None:
    engine = engine_env.engine
    first = GENERAL.instance(engine)
    first["HostName"] = "scribbled-on"  # a caller changing its copy changes nothing else
    second = GENERAL.instance(engine)
    assert second["HostName"] == engine.config.hostname
    assert second is not first

    GENERAL.update(engine, {"HostName": "renamed"})
    assert GENERAL.instance(engine)["HostName"] == "renamed"

    def rename() -> None:
        GENERAL.update(engine, {"HostName": "never-committed"})
        assert GENERAL.instance(engine)["HostName"] == "never-committed"

    rolled_back(engine.store, rename)
    assert GENERAL.instance(engine)["HostName"] == "renamed"


async def test_settings_instances_tell_values_python_thinks_equal_apart(engine_env: RunningEngine) -> None:
    """1 == True == 1.0 in Python, but they are three different things on the wire."""
    source: dict[str, Any] = {"InstanceID": "x", "Oddity": 1}
    settings = SettingsClass("AMT_NotInTheCatalog", "x", lambda engine: source, frozenset())
    engine = engine_env.engine
    assert settings.instance(engine)["Oddity"] == 1
    for value in (True, 1.0, [1.0, 2], [True, 2], 1):
        source["Oddity"] = value
        got = settings.instance(engine).getlist("Oddity")
        expected = value if isinstance(value, list) else [value]
        assert [(type(v), v) for v in got] == [(type(v), v) for v in expected]


def test_state_keys_see_pending_writes_and_deletes() -> None:
    db = Database(":memory:")
    store = StateStore(db, "engine")
    store.set("acl/1", {"a": 1})
    store.set("acl/2", {"a": 2})
    store.set("other", 1)
    with store.transaction():
        store.delete("acl/1")
        store.set("acl/3", {"a": 3})
        assert store.keys("acl/") == ["acl/2", "acl/3"]
    assert store.keys("acl/") == ["acl/2", "acl/3"]
    def delete() -> None:
        store.delete("acl/2")
        assert store.keys("acl/") == ["acl/3"]

    rolled_back(store, delete)
    assert store.keys("acl/") == ["acl/2", "acl/3"]
    assert store.keys() == ["acl/2", "acl/3", "other"]
    db.close()


@dataclasses.dataclass
class _StubStore:
    data: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


@dataclasses.dataclass
class _StubEngine:
    """What a settings class reads from an engine: its defaults' inputs and the stored changes."""

    name: str
    store: _StubStore = dataclasses.field(default_factory=lambda: _StubStore({}))


def _named(engine: Any) -> dict[str, Any]:
    return {"InstanceID": "x", "Name": engine.name}


def test_settings_memos_are_bounded_and_never_trust_their_key() -> None:
    settings = SettingsClass("AMT_NotInTheCatalog", "x", _named, frozenset())
    engines: list[Any] = [_StubEngine(f"engine-{i}") for i in range(MEMO_SIZE + 20)]
    for engine in engines:
        assert settings.instance(engine)["Name"] == engine.name
    assert len(settings._built) == MEMO_SIZE
    assert settings.instance(engines[0])["Name"] == "engine-0"  # evicted long ago, built again

    # A memo found under an engine's key but built from other values (an id reused by a new engine) is rebuilt.
    newcomer: Any = _StubEngine("newcomer")
    impostor = CimObject.new("AMT_NotInTheCatalog", InstanceID="x", Name="someone else")
    settings._built[id(newcomer)] = ({"InstanceID": "x", "Name": "someone else"}, impostor)
    assert settings.instance(newcomer)["Name"] == "newcomer"
