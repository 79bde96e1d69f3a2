"""What the power, boot, alarm and time tests share: raw exchanges, restricted users, the logs they check."""

from __future__ import annotations

from collections.abc import Iterable

from outband.aio.wsman_client import WsmanTransport
from outband.engine.acl import Account
from outband.engine.core import Engine
from outband.proto.amt import Realm
from outband.proto.amtlog import AuditRecord, EventRecord
from outband.proto.cim.model import CimObject, Field, Value
from outband.proto.digest import ha1
from outband.proto.wsman import Envelope, parse_envelope
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine

USER_PASSWORD = "Us3r!pass"


async def exchange(t: WsmanTransport, request: Envelope) -> tuple[bytes, Envelope]:
    """The reply's bytes (for shape comparison) and its parsed envelope."""
    status, body = await t.post(request.to_bytes())
    assert status in (200, 400), status
    return body, parse_envelope(body)


def untyped_input(class_name: str, method: str, **params: Value) -> CimObject:
    """A method input written as given, bypassing the catalog's types (to send what a broken console sends)."""
    message = CimObject.method_input(class_name, method)
    message.fields = [Field(name, value, message.namespace) for name, value in params.items()]
    return message


def output(reply: Envelope) -> CimObject:
    """The object a reply carries; a fault fails the test."""
    assert reply.fault is None, reply.fault
    assert isinstance(reply.body, CimObject)
    return reply.body


async def invoke(t: WsmanTransport, class_name: str, method: str, **params: object) -> CimObject:
    """Invoke a method that must not fault; returns its _OUTPUT."""
    return output(await t.send(msg.invoke(CimObject.method_input(class_name, method, **params))))


async def get(t: WsmanTransport, class_name: str, selectors: dict[str, object] | None = None) -> CimObject:
    return output(await t.send(msg.get(class_name, selectors)))  # type: ignore[arg-type]


def user_transport(env: RunningEngine, realms: Iterable[Realm], username: str = "operator") -> WsmanTransport:
    """A digest user holding only ``realms``, and a transport logged in as them."""
    accounts = env.engine.accounts
    accounts.save(Account(accounts.next_handle(), username, ha1(username, env.engine.realm, USER_PASSWORD),
                          frozenset(realms)))
    return env.transport(username, USER_PASSWORD)


def audit_records(engine: Engine) -> list[AuditRecord]:
    return [AuditRecord.decode(r) for r in engine.store.read_log("audit")]


def event_records(engine: Engine) -> list[EventRecord]:
    return [EventRecord.decode(r) for r in engine.store.read_log("event")]

