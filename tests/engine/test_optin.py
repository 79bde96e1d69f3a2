"""IPS_OptInService over real HTTP: the consent code's life (shown, entered, lapsed, guessed), the policy and
the consent_granted contract other services rely on."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.engine._shape import assert_same_shape
from tests.engine.fakeclock import FakeMonotonic

from outband.engine.acl import Account
from outband.engine.platforms.base import PowerAction
from outband.engine.services import optin, sessions
from outband.engine.services.optin import OptInRequired, OptInState, Purpose, consent_granted
from outband.engine.services.provisioning import ControlMode, set_provisioning
from outband.proto.amt import PTStatus, Realm
from outband.proto.amtlog import AuditRecord
from outband.proto.cim.model import CimObject
from outband.proto.digest import ha1
from outband.proto.wsman import Envelope
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine, running_engine

OPTIN = "IPS_OptInService"


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
async def env(clock: FakeMonotonic) -> AsyncIterator[RunningEngine]:
    async with running_engine(monotonic=clock) as running:
        yield running


def request(method: str, **params: object) -> Envelope:
    return msg.invoke(CimObject.method_input(OPTIN, method, **params))


async def call(env: RunningEngine, method: str, **params: object) -> int:
    reply = await env.transport().send(request(method, **params))
    assert reply.fault is None, reply.fault
    assert isinstance(reply.body, CimObject)
    value = reply.body["ReturnValue"]
    assert isinstance(value, int)
    return value


async def instance(env: RunningEngine) -> CimObject:
    reply = await env.transport().send(msg.get(OPTIN))
    assert isinstance(reply.body, CimObject)
    return reply.body


async def put(env: RunningEngine, **changes: object) -> Envelope:
    body = await instance(env)
    for name, value in changes.items():
        body[name] = value
    return await env.transport().send(msg.put(body))


def shown_code(env: RunningEngine) -> int:
    match = re.search(r"(\d{6})$", env.machine.screen_messages[-1])
    assert match, env.machine.screen_messages
    return int(match.group(1))


def audit_ids(env: RunningEngine) -> list[tuple[int, bytes]]:
    records = [AuditRecord.decode(r) for r in env.engine.store.read_log("audit")]
    return [(r.full_id, r.extended) for r in records if r.app_id == 30]


async def consent(env: RunningEngine) -> None:
    assert await call(env, "StartOptIn") == 0
    assert await call(env, "SendOptInCode", OptInCode=shown_code(env)) == 0


async def test_get_pull_and_method_replies_match_the_captures(env: RunningEngine, conformance_dir: Path) -> None:
    t = env.transport()
    got = await t.send(msg.get(OPTIN))
    assert_same_shape(got.to_bytes(), conformance_dir / "ips/optin/get.xml")
    body = got.body
    assert isinstance(body, CimObject)
    assert (body["CanModifyOptInPolicy"], body["OptInCodeTimeout"], body["OptInDisplayTimeout"]) == (1, 120, 300)
    assert body["OptInRequired"] == OptInRequired.KVM  # ACM default when KVM exists (IRG)
    assert body["OptInState"] == OptInState.NOT_STARTED

    context = await t.send(msg.enumerate_(OPTIN))
    pulled = await t.send(msg.pull(OPTIN, context.body.context))  # type: ignore[union-attr]
    assert_same_shape(pulled.to_bytes(), conformance_dir / "ips/optin/pull.xml")

    # The captures answer 2 (invalid state): nothing to cancel, no code shown, a code already pending.
    cancel = await t.send(request("CancelOptIn"))
    assert_same_shape(cancel.to_bytes(), conformance_dir / "ips/optin/canceloptin.xml")
    assert cancel.body["ReturnValue"] == 2  # type: ignore[index]
    send = await t.send(request("SendOptInCode", OptInCode=123456))
    assert_same_shape(send.to_bytes(), conformance_dir / "ips/optin/sendoptincode.xml")
    assert send.body["ReturnValue"] == 2  # type: ignore[index]
    assert await call(env, "StartOptIn") == 0
    again = await t.send(request("StartOptIn"))
    assert_same_shape(again.to_bytes(), conformance_dir / "ips/optin/startoptin.xml")
    assert again.body["ReturnValue"] == 2  # type: ignore[index]


async def test_code_shown_entered_and_consent_granted(env: RunningEngine) -> None:
    engine = env.engine
    assert not consent_granted(engine, Purpose.KVM)
    assert consent_granted(engine, Purpose.BOOT)  # policy KVM: boot needs none
    assert await call(env, "StartOptIn") == 0
    assert (await instance(env))["OptInState"] == OptInState.DISPLAYED
    code = shown_code(env)
    assert 0 <= code <= 999_999
    assert env.engine.store.get(optin.STATE_KEY)["state"] == OptInState.DISPLAYED
    assert f"{code:06d}" not in str(env.engine.store.get(optin.STATE_KEY))  # only a MAC is stored
    assert await call(env, "SendOptInCode", OptInCode=code) == 0
    assert (await instance(env))["OptInState"] == OptInState.RECEIVED
    assert consent_granted(engine, "kvm")
    assert audit_ids(env) == [(3001, b"\x00")]


async def test_the_code_appears_on_the_hosts_screen_and_serial_console(env: RunningEngine) -> None:
    await env.machine.request_power(PowerAction.ON)
    serial: list[bytes] = []
    env.machine.console.add_serial_listener(serial.append)
    assert await call(env, "StartOptIn") == 0
    code = f"{shown_code(env):06d}"
    assert code in "\n".join(env.machine.console.screen.text())  # what KVM shows
    assert code.encode() in b"".join(serial)  # what SOL carries


async def test_three_wrong_codes_cancel_and_block_the_flow(env: RunningEngine, clock: FakeMonotonic) -> None:
    assert await call(env, "StartOptIn") == 0
    wrong = (shown_code(env) + 1) % 1_000_000
    assert await call(env, "SendOptInCode", OptInCode=wrong) == PTStatus.UNSUPPORTED
    assert await call(env, "SendOptInCode", OptInCode=wrong) == PTStatus.UNSUPPORTED
    assert (await instance(env))["OptInState"] == OptInState.DISPLAYED
    assert await call(env, "SendOptInCode", OptInCode=wrong) == PTStatus.UNSUPPORTED
    assert (await instance(env))["OptInState"] == OptInState.NOT_STARTED
    assert await call(env, "StartOptIn") == 3  # blocked (IRG denial-of-service prevention)
    assert audit_ids(env) == [(3001, b"\x01"), (3002, b"")]
    clock.advance(optin.BLOCK_SECONDS + 1)
    assert await call(env, "StartOptIn") == 0
    # The right code still works after a back-off, and the next round's back-off is longer.
    for _ in range(3):
        await call(env, "SendOptInCode", OptInCode=(shown_code(env) + 1) % 1_000_000)
    clock.advance(optin.BLOCK_SECONDS + 1)
    assert await call(env, "StartOptIn") == 3


async def test_a_displayed_code_lapses_after_the_display_timeout(env: RunningEngine, clock: FakeMonotonic) -> None:
    assert await call(env, "StartOptIn") == 0
    code = shown_code(env)
    clock.advance(301)
    assert (await instance(env))["OptInState"] == OptInState.NOT_STARTED
    assert await call(env, "SendOptInCode", OptInCode=code) == 2


async def test_consent_lapses_after_idle_time_but_not_during_sessions(env: RunningEngine, clock: FakeMonotonic) -> None:
    engine = env.engine
    await consent(env)
    token = sessions.session_opened(engine, sessions.SessionKind.KVM)
    assert (await instance(env))["OptInState"] == OptInState.IN_SESSION
    assert await call(env, "CancelOptIn") == 2  # a session is open
    clock.advance(3600)
    assert optin.optin_state(engine) is OptInState.IN_SESSION
    sessions.session_closed(engine, token)
    assert optin.optin_state(engine) is OptInState.RECEIVED
    clock.advance(100)
    sol = sessions.session_opened(engine, sessions.SessionKind.SOL)  # activity on the port, no consent use
    assert optin.optin_state(engine) is OptInState.RECEIVED
    clock.advance(3600)
    sessions.session_closed(engine, sol)
    clock.advance(119)
    assert consent_granted(engine, Purpose.KVM)
    clock.advance(2)
    assert not consent_granted(engine, Purpose.KVM)
    assert (await instance(env))["OptInState"] == OptInState.NOT_STARTED


async def test_cancel_revokes_consent(env: RunningEngine) -> None:
    await consent(env)
    assert await call(env, "CancelOptIn") == 0
    assert not consent_granted(env.engine, Purpose.KVM)
    assert (3003, b"") in audit_ids(env)


async def test_policy_changes_in_admin_control_mode(env: RunningEngine) -> None:
    engine = env.engine
    reply = await put(env, OptInRequired=int(OptInRequired.ALL))
    assert reply.fault is None
    assert reply.body["OptInRequired"] == OptInRequired.ALL  # type: ignore[index]
    assert not consent_granted(engine, Purpose.BOOT)
    assert not consent_granted(engine, Purpose.REDIRECTION)
    assert (await put(env, OptInRequired=0)).fault is None
    assert consent_granted(engine, Purpose.KVM)
    assert audit_ids(env) == [(3000, b"\x01\x02"), (3000, b"\x02\x00")]
    assert (await put(env, OptInCodeTimeout=900, OptInDisplayTimeout=600)).fault is None
    body = await instance(env)
    assert (body["OptInCodeTimeout"], body["OptInDisplayTimeout"]) == (900, 600)

    for bad in ({"OptInRequired": 2}, {"OptInCodeTimeout": 30}, {"OptInDisplayTimeout": 0}):
        refused = await put(env, **bad)
        assert isinstance(refused.fault, F.InvalidRepresentation), bad
    assert (await instance(env))["OptInRequired"] == OptInRequired.NONE  # nothing half-applied


async def test_client_control_mode_forces_consent_for_everything(env: RunningEngine) -> None:
    engine = env.engine
    set_provisioning(engine, ControlMode.CLIENT)
    body = await instance(env)
    assert (body["CanModifyOptInPolicy"], body["OptInRequired"]) == (0, OptInRequired.ALL)
    assert not consent_granted(engine, Purpose.BOOT)
    assert (await put(env)).fault is None  # echoing the instance back changes nothing
    assert isinstance((await put(env, OptInRequired=0)).fault, F.AccessDenied)
    assert isinstance((await put(env, OptInDisplayTimeout=60)).fault, F.AccessDenied)
    await consent(env)
    assert consent_granted(engine, Purpose.BOOT)


async def test_consent_needs_the_redirection_realm(env: RunningEngine) -> None:
    env.engine.accounts.save(Account(5, "viewer", ha1("viewer", env.engine.realm, "V1ewer!x"),
                                     frozenset({Realm.GENERAL_INFO})))
    viewer = env.transport("viewer", "V1ewer!x")
    assert isinstance((await viewer.send(request("StartOptIn"))).fault, F.AccessDenied)
    assert isinstance((await viewer.send(msg.get(OPTIN))).fault, F.AccessDenied)


async def test_consent_does_not_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "engine.db"
    async with running_engine(state=state, password="Adm1n!pass") as first:
        await consent(first)
        assert consent_granted(first.engine, Purpose.KVM)
    async with running_engine(state=state, password="Adm1n!pass") as second:
        assert not consent_granted(second.engine, Purpose.KVM)
        assert (await instance(second))["OptInState"] == OptInState.NOT_STARTED
