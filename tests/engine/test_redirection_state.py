"""Redirection switches over real HTTP: AMT_RedirectionService, CIM_KVMRedirectionSAP and
IPS_KVMRedirectionSettingData, their audit trail, and what the redirection listeners read from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.engine._shape import assert_same_shape

from outband.engine.acl import Account
from outband.engine.services import optin, sessions
from outband.engine.services.provisioning import ControlMode, set_provisioning
from outband.engine.services.redirection import RedirectionState, redirection_state, rfb_password
from outband.proto.amt import Realm
from outband.proto.amtlog import AuditRecord
from outband.proto.cim.model import CimObject
from outband.proto.digest import ha1
from outband.proto.wsman import Envelope, parse_envelope
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine, running_engine

REDIR = "AMT_RedirectionService"
KVM = "CIM_KVMRedirectionSAP"
KVM_SETTINGS = "IPS_KVMRedirectionSettingData"
GOOD_RFB = "Amt2026!"


def invoke(class_name: str, method: str, **params: object) -> Envelope:
    return msg.invoke(CimObject.method_input(class_name, method, **params))


async def return_value(env: RunningEngine, class_name: str, method: str, **params: object) -> int:
    reply = await env.transport().send(invoke(class_name, method, **params))
    assert reply.fault is None, reply.fault
    value = reply.body["ReturnValue"]  # type: ignore[index]
    assert isinstance(value, int)
    return value


async def get(env: RunningEngine, class_name: str) -> CimObject:
    reply = await env.transport().send(msg.get(class_name))
    assert isinstance(reply.body, CimObject), reply.fault
    return reply.body


async def put(env: RunningEngine, class_name: str, **changes: object) -> Envelope:
    body = await get(env, class_name)
    for name, value in changes.items():
        body[name] = value
    return await env.transport().send(msg.put(body))


def audit_ids(env: RunningEngine, *apps: int) -> list[int]:
    records = [AuditRecord.decode(r) for r in env.engine.store.read_log("audit")]
    return [r.full_id for r in records if r.app_id in apps]


async def test_everything_starts_switched_off(engine_env: RunningEngine) -> None:
    assert redirection_state(engine_env.engine) == RedirectionState()
    service = await get(engine_env, REDIR)
    assert (service["ListenerEnabled"], service["EnabledState"]) == (False, 32768)
    kvm = await get(engine_env, KVM)
    assert (kvm["EnabledState"], kvm["RequestedState"]) == (3, 5)
    settings = await get(engine_env, KVM_SETTINGS)
    assert (settings["Is5900PortEnabled"], settings["RFBPassword"]) == (False, "")
    assert rfb_password(engine_env.engine) is None


async def test_redirection_service_replies_equal_the_captures_once_enabled(
    engine_env: RunningEngine, conformance_dir: Path
) -> None:
    env = engine_env
    reply = await put(env, REDIR, ListenerEnabled=True)
    assert reply.fault is None
    change = await env.transport().send(invoke(REDIR, "RequestStateChange", RequestedState=32771))
    captured = conformance_dir / "amt/redirectionservice/requeststatechange.xml"
    assert_same_shape(change.to_bytes(), captured)
    assert change.body == parse_envelope(captured.read_bytes()).body

    for operation, capture in ((msg.get(REDIR), "get.xml"), (msg.put(await get(env, REDIR)), "put.xml")):
        answer = await env.transport().send(operation)
        expected = conformance_dir / f"amt/redirectionservice/{capture}"
        assert_same_shape(answer.to_bytes(), expected)
        assert answer.body == parse_envelope(expected.read_bytes()).body
    context = await env.transport().send(msg.enumerate_(REDIR))
    pulled = await env.transport().send(msg.pull(REDIR, context.body.context))  # type: ignore[union-attr]
    assert_same_shape(pulled.to_bytes(), conformance_dir / "amt/redirectionservice/pull.xml")
    assert redirection_state(env.engine) == RedirectionState(listener=True, sol=True, ider=True)


async def test_state_changes_are_audited_and_validated(engine_env: RunningEngine) -> None:
    env = engine_env
    assert await return_value(env, REDIR, "RequestStateChange", RequestedState=32770) == 0  # SOL on
    assert await return_value(env, REDIR, "RequestStateChange", RequestedState=32769) == 0  # IDER on, SOL off
    assert await return_value(env, REDIR, "RequestStateChange", RequestedState=32769) == 0  # no change
    assert await return_value(env, REDIR, "RequestStateChange", RequestedState=32768) == 0
    assert audit_ids(env, 18) == [1806, 1802, 1807, 1803]
    for bad in (2, 32772, 3):
        assert await return_value(env, REDIR, "RequestStateChange", RequestedState=bad) == 5
    assert (await get(env, REDIR))["EnabledState"] == 32768


async def test_switching_off_ends_open_sessions(engine_env: RunningEngine) -> None:
    env, engine = engine_env, engine_env.engine
    ended: list[str] = []
    await put(env, REDIR, ListenerEnabled=True)
    assert await return_value(env, REDIR, "RequestStateChange", RequestedState=32771) == 0
    sessions.session_opened(engine, sessions.SessionKind.SOL, lambda: ended.append("sol"))
    sessions.session_opened(engine, sessions.SessionKind.IDER, lambda: ended.append("ider"))
    assert await return_value(env, REDIR, "RequestStateChange", RequestedState=32769) == 0  # SOL off
    assert ended == ["sol"]
    assert (await put(env, REDIR, ListenerEnabled=False)).fault is None
    assert ended == ["sol", "ider"]
    assert sessions.open_sessions(engine) == []


async def test_terminate_session_by_type(engine_env: RunningEngine) -> None:
    env, engine = engine_env, engine_env.engine
    ended: list[str] = []
    sessions.session_opened(engine, sessions.SessionKind.SOL, lambda: ended.append("sol"))
    assert await return_value(env, REDIR, "TerminateSession", SessionType=0) == 3  # no IDE-R session
    assert await return_value(env, REDIR, "TerminateSession", SessionType=1) == 0
    assert ended == ["sol"]
    assert await return_value(env, REDIR, "TerminateSession", SessionType=1) == 3
    assert await return_value(env, REDIR, "TerminateSession", SessionType=7) == 2


async def test_kvm_access_point_as_captured(engine_env: RunningEngine, conformance_dir: Path) -> None:
    env, engine = engine_env, engine_env.engine
    assert await return_value(env, KVM, "RequestStateChange", RequestedState=2) == 0
    got = await env.transport().send(msg.get(KVM))
    captured = conformance_dir / "cim/kvm/get.xml"
    assert_same_shape(got.to_bytes(), captured)
    # Enabled with no session: 6 "enabled but offline", requested 2 -- value for value the capture.
    assert got.body == parse_envelope(captured.read_bytes()).body
    context = await env.transport().send(msg.enumerate_(KVM))
    pulled = await env.transport().send(msg.pull(KVM, context.body.context))  # type: ignore[union-attr]
    assert_same_shape(pulled.to_bytes(), conformance_dir / "cim/kvm/pull.xml")

    ended: list[str] = []
    sessions.session_opened(engine, sessions.SessionKind.KVM, lambda: ended.append("kvm"))
    assert (await get(env, KVM))["EnabledState"] == 2
    assert redirection_state(engine).kvm
    assert await return_value(env, KVM, "RequestStateChange", RequestedState=6) == 5
    assert await return_value(env, KVM, "RequestStateChange", RequestedState=3) == 0
    assert ended == ["kvm"]
    assert ((await get(env, KVM))["EnabledState"], redirection_state(engine).kvm) == (3, False)
    assert audit_ids(env, 18) == [1810, 1811]


@pytest.mark.parametrize(
    "password",
    ["Amt2026", "Amt2026!x", "amt2026!", "AMT2026!", "Amtabcd!", "Amt20261", 'Amt2026"', "Amt,026!", "Amt 026!",
     "Ämt2026!"],
)
async def test_weak_rfb_passwords_are_refused(engine_env: RunningEngine, password: str) -> None:
    reply = await put(engine_env, KVM_SETTINGS, RFBPassword=password)
    assert reply.fault is not None
    assert reply.fault.subcode.local == "InvalidParameter"
    assert rfb_password(engine_env.engine) is None


async def test_port_5900_needs_a_password_and_the_password_is_write_only(engine_env: RunningEngine) -> None:
    env, engine = engine_env, engine_env.engine
    refused = await put(env, KVM_SETTINGS, Is5900PortEnabled=True)
    assert refused.fault is not None
    assert refused.fault.subcode.local == "InvalidParameter"
    assert not redirection_state(engine).port_5900

    accepted = await put(env, KVM_SETTINGS, Is5900PortEnabled=True, RFBPassword=GOOD_RFB, SessionTimeout=30)
    assert accepted.fault is None
    assert accepted.body["RFBPassword"] == ""  # type: ignore[index]
    assert accepted.body["SessionTimeout"] == 30  # type: ignore[index]
    assert rfb_password(engine) == GOOD_RFB
    assert redirection_state(engine).port_5900
    # MeshCommander echoes the instance it read, empty RFBPassword included: that keeps the password.
    assert (await put(env, KVM_SETTINGS, DefaultScreen=1)).fault is None
    assert rfb_password(engine) == GOOD_RFB
    assert audit_ids(env, 29) == [2902]
    assert (await put(env, KVM_SETTINGS, EnabledByMEBx=False)).fault is None  # read-only: ignored
    assert (await get(env, KVM_SETTINGS))["EnabledByMEBx"] is True


async def test_kvm_consent_policy_is_the_opt_in_policy(engine_env: RunningEngine) -> None:
    env, engine = engine_env, engine_env.engine
    assert (await get(env, KVM_SETTINGS))["OptInPolicy"] is True  # ACM default: consent for KVM
    assert (await put(env, KVM_SETTINGS, OptInPolicy=False)).fault is None
    assert optin.required(engine) is optin.OptInRequired.NONE
    assert optin.consent_granted(engine, optin.Purpose.KVM)
    assert audit_ids(env, 29, 30) == [3000, 2901]
    set_provisioning(engine, ControlMode.CLIENT)
    assert (await get(env, KVM_SETTINGS))["OptInPolicy"] is True
    assert isinstance((await put(env, KVM_SETTINGS, OptInPolicy=False)).fault, F.AccessDenied)


async def test_redirection_needs_its_realm(engine_env: RunningEngine) -> None:
    engine = engine_env.engine
    engine.accounts.save(Account(3, "asset", ha1("asset", engine.realm, "Ass3t!pw"), frozenset({Realm.HARDWARE_ASSET})))
    asset = engine_env.transport("asset", "Ass3t!pw")
    for request in (msg.get(REDIR), invoke(REDIR, "RequestStateChange", RequestedState=32771),
                    invoke(KVM, "RequestStateChange", RequestedState=2), msg.get(KVM_SETTINGS)):
        assert isinstance((await asset.send(request)).fault, F.AccessDenied)
    assert redirection_state(engine) == RedirectionState()


async def test_switches_and_password_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "engine.db"
    async with running_engine(state=state, password="Adm1n!pass") as env:
        await put(env, REDIR, ListenerEnabled=True)
        assert await return_value(env, REDIR, "RequestStateChange", RequestedState=32770) == 0
        assert await return_value(env, KVM, "RequestStateChange", RequestedState=2) == 0
        assert (await put(env, KVM_SETTINGS, Is5900PortEnabled=True, RFBPassword=GOOD_RFB)).fault is None
    async with running_engine(state=state, password="Adm1n!pass") as env:
        assert redirection_state(env.engine) == RedirectionState(
            listener=True, sol=True, kvm=True, port_5900=True, kvm_requested=2)
        assert rfb_password(env.engine) == GOOD_RFB
