"""Peer pair: AmtClient against the engine on loopback, through Digest, for every generic operation.

The engine gets one extra service, a made-up ``IPS_OutbandTestWidget`` class with Create, Delete and a
method, so these tests exercise every operation without depending on which AMT services exist yet.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from outband.aio.errors import AuthenticationError, ConnectError
from outband.aio.tls import fingerprint_of
from outband.aio.wsman_client import WsmanTransport
from outband.client import AmtClient
from outband.engine.core import Engine, EngineConfig
from outband.engine.registry import Context, Service
from outband.engine.services import general
from outband.proto.cim.model import CimObject
from outband.proto.digest import DigestVerifier
from outband.proto.wsman import EndpointReference, Envelope, ObjectAndEPR, resource_uri
from outband.proto.wsman import faults as F
from outband.proto.wsman.namespaces import ENUMERATE_EPR, ENUMERATE_OBJECT_AND_EPR, Action
from outband.testing.engine import RunningEngine, running_engine

WIDGET = "IPS_OutbandTestWidget"


def widget_service() -> Service:
    """Widgets live in a dict; Create names them ``widget-N``, Bump counts calls on one widget."""
    service = Service("test-widgets")
    widgets: dict[str, CimObject] = {}

    @service.instances(WIDGET, realm=None, keys=("InstanceID",))
    def instances(engine: Engine) -> Iterable[CimObject]:
        return [w.copy() for w in widgets.values()]

    @service.create(WIDGET)
    async def create(ctx: Context, new: CimObject) -> EndpointReference:
        if new.get("InstanceID") in widgets:
            raise F.AlreadyExists()
        name = f"widget-{len(widgets) + 1}"
        widget = CimObject.new(WIDGET, InstanceID=name, Label=new.get("Label", ""), Count="0")
        widgets[name] = widget
        return EndpointReference.to(resource_uri(WIDGET), {"InstanceID": name})

    @service.delete(WIDGET)
    async def delete(ctx: Context, target: CimObject) -> None:
        del widgets[str(target["InstanceID"])]

    @service.method(WIDGET, "Bump", realm=None)
    async def bump(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
        assert target is not None
        widget = widgets[str(target["InstanceID"])]
        widget["Count"] = str(int(str(widget["Count"])) + int(message.get("By", "1")))
        out = CimObject("Bump_OUTPUT", resource_uri(WIDGET))
        out["Count"] = widget["Count"]
        out["ReturnValue"] = 0
        return out

    return service


@pytest.fixture
async def env() -> AsyncIterator[RunningEngine]:
    async with running_engine(config=EngineConfig(services=(general.service, widget_service()))) as running:
        yield running


def client_for(env: RunningEngine, **kwargs: object) -> AmtClient:
    return AmtClient(env.host, password=env.password, port=env.port, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- wire taps


@dataclass
class Wire:
    """What crossed the wire, from aiohttp's tracing: every status, and the nc of every answered request."""

    statuses: list[int] = field(default_factory=list)
    nonce_counts: list[int] = field(default_factory=list)


async def _on_start(session: object, ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams) -> None:
    match = re.search(r'nc="?([0-9a-f]{8})', params.headers.get("Authorization", ""))
    if match:
        ctx.trace_request_ctx.nonce_counts.append(int(match.group(1), 16))


async def _on_end(session: object, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
    ctx.trace_request_ctx.statuses.append(params.response.status)


@pytest.fixture
async def tapped(env: RunningEngine) -> AsyncIterator[tuple[AmtClient, Wire]]:
    wire = Wire()
    trace = aiohttp.TraceConfig(trace_config_ctx_factory=lambda trace_request_ctx: SimpleNamespace(  # type: ignore[arg-type]
        trace_request_ctx=wire))
    trace.on_request_start.append(_on_start)
    trace.on_request_end.append(_on_end)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        transport = WsmanTransport(env.host, "admin", env.password, port=env.port, session=session)
        async with AmtClient(env.host, transport=transport) as client:
            yield client, wire


class RecordingTransport(WsmanTransport):
    """Remembers the action of every request it sends."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.actions: list[str] = []

    async def send(self, envelope: Envelope) -> Envelope:
        self.actions.append(envelope.header.action)
        return await super().send(envelope)


# ---------------------------------------------------------------------------------------------- operations


async def test_identify_needs_no_password(env: RunningEngine) -> None:
    async with AmtClient(env.host, port=env.port) as client:
        identity = await client.identify()
    assert identity.product_vendor == "Intel Corporation"
    assert identity.product_version == "AMT " + ".".join(env.engine.amt_version.split(".")[:2])


async def test_get_returns_typed_instance(env: RunningEngine) -> None:
    async with client_for(env) as client:
        settings = await client.get("AMT_GeneralSettings")
    assert settings.class_name == "AMT_GeneralSettings"
    assert settings["DigestRealm"] == env.engine.realm
    assert settings["DDNSTTL"] == 900
    assert settings["PingResponseEnabled"] is True


async def test_put_changes_and_persists(env: RunningEngine) -> None:
    async with client_for(env) as client:
        settings = await client.get("AMT_GeneralSettings")
        settings["HostName"] = "lab-7"
        answered = await client.put(settings)
        again = await client.get("AMT_GeneralSettings", {"InstanceID": "Intel(r) AMT: General Settings"})
    assert answered["HostName"] == "lab-7"
    assert again["HostName"] == "lab-7"


async def test_enumerate_pulls_in_batches_until_the_end(env: RunningEngine) -> None:
    transport = RecordingTransport(env.host, "admin", env.password, port=env.port)
    async with AmtClient(env.host, transport=transport) as client:
        everything = await client.enumerate("CIM_SoftwareIdentity")
        transport.actions.clear()
        batched = await client.enumerate("CIM_SoftwareIdentity", max_elements=4)
    await transport.close()
    assert len(everything) == 11
    assert everything[3]["InstanceID"] == "AMT"
    assert [o["InstanceID"] for o in batched] == [o["InstanceID"] for o in everything]
    assert transport.actions == [Action.ENUMERATE, Action.PULL, Action.PULL, Action.PULL]


async def test_enumerate_references(env: RunningEngine) -> None:
    async with client_for(env) as client:
        eprs = await client.enumerate("CIM_SoftwareIdentity", mode=ENUMERATE_EPR)
        pairs = await client.enumerate("CIM_SoftwareIdentity", mode=ENUMERATE_OBJECT_AND_EPR)
        via_epr = await client.get(eprs[3])
    assert all(isinstance(e, EndpointReference) for e in eprs)
    assert eprs[3].selector_dict == {"InstanceID": "AMT"}
    assert via_epr["InstanceID"] == "AMT"
    assert all(isinstance(p, ObjectAndEPR) for p in pairs)
    assert [p.epr for p in pairs] == eprs
    assert pairs[0].obj["InstanceID"] == pairs[0].epr.selector_dict["InstanceID"]


async def test_create_invoke_delete(env: RunningEngine) -> None:
    async with client_for(env) as client:
        epr = await client.create(CimObject.new(WIDGET, Label="first"))
        assert epr.class_name == WIDGET
        assert epr.selector_dict == {"InstanceID": "widget-1"}
        await client.invoke(epr, "Bump")
        output = await client.invoke(WIDGET, "Bump", {"By": "5"}, {"InstanceID": "widget-1"})
        assert output.element == "Bump_OUTPUT"
        assert output["Count"] == "6"  # an uncatalogued class: values stay text
        assert (await client.get(epr))["Label"] == "first"
        await client.delete(epr)
        with pytest.raises(F.DestinationUnreachable):
            await client.get(epr)
        assert await client.enumerate(WIDGET) == []


async def test_faults_are_raised_typed(env: RunningEngine) -> None:
    async with client_for(env) as client:
        with pytest.raises(F.DestinationUnreachable) as unreachable:
            await client.get("CIM_SoftwareIdentity", {"InstanceID": "no such thing"})
        with pytest.raises(F.ActionNotSupported):
            await client.invoke("CIM_SoftwareIdentity", "Explode")
        epr = await client.create(CimObject.new(WIDGET))
        with pytest.raises(F.AlreadyExists):
            await client.create(CimObject.new(WIDGET, InstanceID=epr.selector_dict["InstanceID"]))
    assert "No route" in unreachable.value.reason


async def test_wrong_password_is_an_authentication_error(env: RunningEngine) -> None:
    async with AmtClient(env.host, password="not it", port=env.port) as client:
        with pytest.raises(AuthenticationError):
            await client.get("AMT_GeneralSettings")


# ---------------------------------------------------------------------------------------------- digest


async def test_nonce_reuse_costs_one_challenge(tapped: tuple[AmtClient, Wire]) -> None:
    client, wire = tapped
    for _ in range(6):
        await client.get("AMT_GeneralSettings")
    assert wire.statuses.count(401) == 1
    assert wire.statuses.count(200) == 6
    assert wire.nonce_counts == [1, 2, 3, 4, 5, 6]


async def test_stale_nonce_is_retried_transparently(env: RunningEngine, tapped: tuple[AmtClient, Wire]) -> None:
    client, wire = tapped
    await client.get("AMT_GeneralSettings")
    env.engine.verifier = DigestVerifier(env.engine.accounts.ha1, realm=env.engine.realm)  # forgets every nonce
    settings = await client.get("AMT_GeneralSettings")
    assert settings["DigestRealm"] == env.engine.realm
    assert wire.statuses == [401, 200, 401, 200]
    assert wire.nonce_counts == [1, 2, 1]


async def test_concurrent_calls_share_one_nonce_in_order(tapped: tuple[AmtClient, Wire]) -> None:
    client, wire = tapped
    results = await asyncio.gather(*(client.get("CIM_SoftwareIdentity", {"InstanceID": "AMT"}) for _ in range(20)))
    assert all(r["InstanceID"] == "AMT" for r in results)
    assert wire.statuses.count(401) == 1
    assert wire.nonce_counts == list(range(1, 21))


# ---------------------------------------------------------------------------------------------- TLS


async def test_tls_with_pinned_fingerprint(tmp_path: Path) -> None:
    async with running_engine(tls_dir=tmp_path) as tls_env:
        pin = fingerprint_of(tmp_path / "cert.pem")
        async with AmtClient(tls_env.host, password=tls_env.password, port=tls_env.tls_port, tls=True,
                             fingerprint=pin) as client:
            assert (await client.get("AMT_GeneralSettings"))["DigestRealm"] == tls_env.engine.realm
        wrong = "00" * 32
        async with AmtClient(tls_env.host, password=tls_env.password, port=tls_env.tls_port, tls=True,
                             fingerprint=wrong) as client:
            with pytest.raises(ConnectError, match="fingerprint"):
                await client.get("AMT_GeneralSettings")
