"""AmtClient against scripted devices: replies that must be refused, and enumerations that misbehave.

A scripted transport answers each request with whatever the test's function returns, so the odd cases real
firmware (or a broken device) produces are reproducible: a reply to another request, a wrong action, a
context that never ends, both a context and EndOfSequence (as one real capture has), a cancelled Pull.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from outband.aio.errors import BadResponse
from outband.aio.wsman_client import WsmanTransport
from outband.client import AmtClient
from outband.proto.cim.model import CimObject
from outband.proto.wsman import (
    EndpointReference,
    EnumerateResponse,
    Envelope,
    PullResponse,
    Release,
    parse_envelope,
)
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.proto.wsman.envelope import Body, Item, Pull
from outband.proto.wsman.namespaces import ENUMERATE_EPR, Action

Script = Callable[[Envelope], Awaitable[Envelope]]


class ScriptedTransport(WsmanTransport):
    def __init__(self, script: Script) -> None:
        super().__init__("device.test", password="x")
        self.script = script
        self.requests: list[Envelope] = []

    async def send(self, envelope: Envelope) -> Envelope:
        self.requests.append(envelope)
        return await self.script(envelope)

    @property
    def actions(self) -> list[str]:
        return [r.header.action for r in self.requests]


def answer(request: Envelope, body: Body) -> Envelope:
    return msg.reply(request.header, body, "uuid:00000000-8086-8086-8086-000000000001")


def software(name: str) -> CimObject:
    return CimObject.new("CIM_SoftwareIdentity", InstanceID=name, VersionString="16.1.30")


def client_with(script: Script, *, max_pulls: int = 100, max_items: int = 1000) -> tuple[AmtClient, ScriptedTransport]:
    transport = ScriptedTransport(script)
    return AmtClient("device.test", transport=transport, max_pulls=max_pulls, max_items=max_items), transport


def enumeration(pages: Callable[[int, Pull], PullResponse]) -> Script:
    """A device that opens context ``ctx-0`` and answers the n-th Pull with ``pages(n, pull)``."""
    pulls = 0

    async def script(request: Envelope) -> Envelope:
        nonlocal pulls
        body = request.body
        if isinstance(body, Pull):
            pulls += 1
            return answer(request, pages(pulls, body))
        if isinstance(body, Release):
            return answer(request, None)
        return answer(request, EnumerateResponse("ctx-0"))

    return script


# ---------------------------------------------------------------------------------------------- replies


async def test_reply_to_another_request_is_refused() -> None:
    async def script(request: Envelope) -> Envelope:
        reply = answer(request, software("AMT"))
        reply.header.relates_to = "uuid:someone-else"
        return reply

    client, _ = client_with(script)
    with pytest.raises(BadResponse, match="relates to"):
        await client.get("CIM_SoftwareIdentity")


async def test_reply_with_the_wrong_action_is_refused() -> None:
    async def script(request: Envelope) -> Envelope:
        return msg.reply(request.header, software("AMT"), "uuid:1", action=Action.PUT_RESPONSE)

    client, _ = client_with(script)
    with pytest.raises(BadResponse, match="PutResponse"):
        await client.get("CIM_SoftwareIdentity")


async def test_reply_of_the_wrong_shape_is_refused() -> None:
    async def script(request: Envelope) -> Envelope:
        if request.header.action == Action.GET:
            return answer(request, PullResponse([software("AMT")]))
        return answer(request, CimObject("Other_OUTPUT", request.header.resource_uri or ""))

    client, _ = client_with(script)
    with pytest.raises(BadResponse, match="PullResponse"):
        await client.get("CIM_SoftwareIdentity")
    with pytest.raises(BadResponse, match="Other_OUTPUT"):
        await client.invoke("CIM_PowerManagementService", "RequestPowerStateChange", {"PowerState": 2})


async def test_fault_is_raised_as_its_own_class() -> None:
    async def script(request: Envelope) -> Envelope:
        return answer(request, F.InternalError(detail="AMT-STATUS 2054"))

    client, _ = client_with(script)
    with pytest.raises(F.InternalError) as raised:
        await client.delete("AMT_PublicKeyCertificate", {"InstanceID": "cert 1"})
    assert raised.value.detail == "AMT-STATUS 2054"


async def test_invoke_sends_typed_parameters_to_the_selected_instance() -> None:
    async def script(request: Envelope) -> Envelope:
        out = CimObject.new("CIM_PowerManagementService")
        out.element = "RequestPowerStateChange_OUTPUT"
        out["ReturnValue"] = 0
        return answer(request, out)

    client, transport = client_with(script)
    system = EndpointReference.to("CIM_ComputerSystem", {"Name": "ManagedSystem"})
    output = await client.invoke("CIM_PowerManagementService", "RequestPowerStateChange",
                                 {"PowerState": 8, "ManagedElement": system}, {"Name": "power"})
    sent = transport.requests[0]
    assert output["ReturnValue"] == 0
    assert sent.header.action.endswith("/CIM_PowerManagementService/RequestPowerStateChange")
    assert sent.header.selectors.as_dict() == {"Name": "power"}
    assert isinstance(sent.body, CimObject)
    assert sent.body["PowerState"] == 8
    assert sent.body["ManagedElement"] == system
    with pytest.raises(TypeError):
        await client.invoke("CIM_PowerManagementService", "RequestPowerStateChange", {"PowerState": "on"})


async def test_put_names_the_instance_by_its_keys() -> None:
    async def script(request: Envelope) -> Envelope:
        return answer(request, request.body)

    client, transport = client_with(script)
    await client.put(CimObject.new("AMT_EthernetPortSettings", InstanceID="Intel(r) AMT Ethernet Port Settings 1",
                                   DHCPEnabled=True))
    await client.put(CimObject.new("AMT_GeneralSettings", HostName="x"), {})
    assert transport.requests[0].header.selectors.as_dict() == {"InstanceID": "Intel(r) AMT Ethernet Port Settings 1"}
    assert not transport.requests[1].header.selectors


# ---------------------------------------------------------------------------------------------- enumeration


async def test_real_capture_with_context_and_end_of_sequence_ends_the_enumeration(conformance_dir: Path) -> None:
    capture = parse_envelope((conformance_dir / "cim/physical/package/pull.xml").read_bytes())
    assert isinstance(capture.body, PullResponse)
    assert capture.body.context
    assert capture.body.end_of_sequence

    client, transport = client_with(enumeration(lambda n, pull: capture.body))  # type: ignore[arg-type,return-value]
    items = await client.enumerate("CIM_PhysicalPackage")
    assert [o.class_name for o in items] == ["CIM_Card"]
    assert transport.actions == [Action.ENUMERATE, Action.PULL]


async def test_context_may_change_between_pulls() -> None:
    def pages(n: int, pull: Pull) -> PullResponse:
        assert pull.context == ("ctx-0" if n == 1 else "ctx-1")
        return PullResponse([software(f"item {n}")], None if n == 2 else "ctx-1", n == 2)

    client, _ = client_with(enumeration(pages))
    assert [o["InstanceID"] for o in await client.enumerate("CIM_SoftwareIdentity")] == ["item 1", "item 2"]


async def test_enumerate_without_context_pulls_nothing() -> None:
    async def script(request: Envelope) -> Envelope:
        return answer(request, EnumerateResponse(None))

    client, transport = client_with(script)
    assert await client.enumerate("AMT_PublicKeyCertificate") == []
    assert transport.actions == [Action.ENUMERATE]


async def test_looping_device_is_cut_off_and_released() -> None:
    client, transport = client_with(enumeration(lambda n, pull: PullResponse([software("again")], "ctx-0")),
                                    max_pulls=5)
    with pytest.raises(BadResponse, match="after 5 pulls"):
        await client.enumerate("CIM_SoftwareIdentity")
    assert transport.actions == [Action.ENUMERATE, *[Action.PULL] * 5, Action.RELEASE]
    release = transport.requests[-1].body
    assert isinstance(release, Release)
    assert release.context == "ctx-0"


async def test_item_flood_is_cut_off_and_released() -> None:
    flood: list[Item] = [software(str(i)) for i in range(40)]
    client, transport = client_with(enumeration(lambda n, pull: PullResponse(flood, "ctx-0")), max_items=100)
    with pytest.raises(BadResponse, match="100 items"):
        await client.enumerate("CIM_SoftwareIdentity")
    assert transport.actions[-1] == Action.RELEASE


async def test_fault_during_pull_releases_and_raises_the_fault() -> None:
    def pages(n: int, pull: Pull) -> PullResponse:
        if n == 2:
            raise F.TimedOut()
        return PullResponse([software("first")], "ctx-0")

    async def script(request: Envelope) -> Envelope:
        try:
            return await enumerate_script(request)
        except F.TimedOut as fault:
            return answer(request, fault)

    enumerate_script = enumeration(pages)
    client, transport = client_with(script)
    with pytest.raises(F.TimedOut):
        await client.enumerate("CIM_SoftwareIdentity")
    assert transport.actions == [Action.ENUMERATE, Action.PULL, Action.PULL, Action.RELEASE]


async def test_cancelled_enumeration_is_released() -> None:
    stalled = asyncio.Event()

    async def script(request: Envelope) -> Envelope:
        if isinstance(request.body, Pull) and request.body.context == "ctx-1":
            stalled.set()
            await asyncio.Event().wait()  # the device never answers the second Pull
        if isinstance(request.body, Pull):
            return answer(request, PullResponse([software("first")], "ctx-1"))
        if isinstance(request.body, Release):
            return answer(request, None)
        return answer(request, EnumerateResponse("ctx-0"))

    client, transport = client_with(script)
    task = asyncio.create_task(client.enumerate("CIM_SoftwareIdentity"))
    await stalled.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert transport.actions == [Action.ENUMERATE, Action.PULL, Action.PULL, Action.RELEASE]
    release = transport.requests[-1].body
    assert isinstance(release, Release)
    assert release.context == "ctx-1"


async def test_items_of_the_wrong_kind_are_refused() -> None:
    client, _ = client_with(enumeration(lambda n, pull: PullResponse([software("AMT")], None, True)))
    with pytest.raises(BadResponse, match="expected EndpointReference"):
        await client.enumerate("CIM_SoftwareIdentity", mode=ENUMERATE_EPR)
    with pytest.raises(ValueError, match="mode"):
        await client.enumerate("CIM_SoftwareIdentity", mode="EnumerateEverything")


def test_connection_arguments_and_a_transport_do_not_mix() -> None:
    with pytest.raises(ValueError, match="transport"):
        AmtClient("device.test", password="x", transport=WsmanTransport("device.test"))
