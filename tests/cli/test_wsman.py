"""``outband wsman``: decoding captures, and every device command against an engine on loopback.

The CLI runs its own event loop, so against the engine (running in the test's loop) it is invoked in a worker
thread with ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from outband.aio.tls import fingerprint_of
from outband.cli.main import app
from outband.cli.wsman import Device
from outband.client import AmtClient
from outband.engine.core import Engine, EngineConfig
from outband.engine.registry import Context, Service
from outband.engine.services import general
from outband.proto.cim.model import CimObject
from outband.proto.wsman import EndpointReference, resource_uri
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine, running_engine

ECHO = "IPS_OutbandTestEcho"
BASE_ENV: dict[str, str | None] = {"AMT_PASSWORD": None, "COLUMNS": "200"}  # wide tables: no folded values


def cli(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={**BASE_ENV, **(env or {})})


def decoded(path: Path) -> dict[str, Any]:
    result = cli("wsman", "decode", "--json", str(path))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------- decode


def test_decode_get_types_every_value(conformance_dir: Path) -> None:
    data = decoded(conformance_dir / "amt/general/get.xml")
    assert data["action"].endswith("/transfer/GetResponse")
    assert data["relates_to"] == "1"
    instance = data["instance"]
    assert instance["class"] == "AMT_GeneralSettings"
    props = instance["properties"]
    assert props["DDNSTTL"] == 900
    assert props["PingResponseEnabled"] is True
    assert props["DDNSUpdateEnabled"] is False
    assert props["DigestRealm"] == "Digest:F3EB554784E729164447A89F60B641C5"


def test_decode_pull_items_with_references(conformance_dir: Path) -> None:
    data = decoded(conformance_dir / "cim/service/availabletoelement/pull.xml")
    assert data["end_of_sequence"] is True
    assert data["context"] is None
    [item] = data["items"]
    assert item["class"] == "CIM_AssociatedPowerManagementService"
    props = item["properties"]
    assert props["PowerState"] == 2
    assert props["AvailableRequestedPowerStates"] == [10, 8, 5, 11, 4, 7, 14, 12]
    assert props["UserOfService"]["selectors"] == {"CreationClassName": "CIM_ComputerSystem", "Name": "ManagedSystem"}


def test_decode_method_output_and_created_reference(conformance_dir: Path) -> None:
    output = decoded(conformance_dir / "cim/power/managementservice/requestpowerstatechange.xml")["output"]
    assert output["element"] == "RequestPowerStateChange_OUTPUT"
    assert output["properties"]["ReturnValue"] == 0
    created = decoded(conformance_dir / "amt/tls/credentialcontext/create.xml")["created"]
    assert created["resource_uri"].endswith("/AMT_TLSCredentialContext")
    assert created["selectors"]


def test_decode_fault(tmp_path: Path) -> None:
    request = msg.get("IPS_AlarmClockOccurrence", {"InstanceID": "gone"})
    capture = tmp_path / "fault.xml"
    capture.write_bytes(msg.reply(request.header, F.DestinationUnreachable(), "uuid:1").to_bytes())
    fault = decoded(capture)["fault"]
    assert fault["fault"] == "DestinationUnreachable"
    assert fault["reason"].startswith("No route can be determined")
    table = cli("wsman", "decode", str(capture))
    assert table.exit_code == 0
    assert "DestinationUnreachable" in table.stdout


def test_decode_shows_meanings_beside_numbers(conformance_dir: Path) -> None:
    result = cli("wsman", "decode", str(conformance_dir / "cim/service/availabletoelement/pull.xml"))
    assert result.exit_code == 0, result.output
    assert "2 (On)" in result.stdout
    assert "10 (Master Bus Reset)" in result.stdout
    assert "CIM_ComputerSystem?CreationClassName=CIM_ComputerSystem&Name=ManagedSystem" in result.stdout


def test_decode_refuses_garbage_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>')
    result = cli("wsman", "decode", str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "not a WS-MAN envelope" in result.stderr
    missing = cli("wsman", "decode", str(tmp_path / "absent.xml"))
    assert missing.exit_code == 1
    assert "cannot read" in missing.stderr


# ---------------------------------------------------------------------------------------------- device


def echo_service(calls: list[CimObject]) -> Service:
    """A class-level method that records the parameters it was given."""
    service = Service("test-echo")

    @service.instances(ECHO, realm=None, keys=("InstanceID",))
    def instances(engine: Engine) -> Iterable[CimObject]:
        return [CimObject.new(ECHO, InstanceID="echo")]

    @service.method(ECHO, "Echo", realm=None)
    async def echo(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
        calls.append(message)
        out = CimObject("Echo_OUTPUT", resource_uri(ECHO))
        out["Heard"] = str(len(message.fields))
        out["ReturnValue"] = 0
        return out

    return service


@pytest.fixture
async def env_and_calls() -> AsyncIterator[tuple[RunningEngine, list[CimObject]]]:
    calls: list[CimObject] = []
    async with running_engine(config=EngineConfig(services=(general.service, echo_service(calls)))) as env:
        yield env, calls


@pytest.fixture
def env(env_and_calls: tuple[RunningEngine, list[CimObject]]) -> RunningEngine:
    return env_and_calls[0]


async def device(env: RunningEngine, command: str, *args: str, password: str | None = None) -> Result:
    """``outband wsman COMMAND HOST ARGS --port PORT`` with the password in AMT_PASSWORD."""
    argv = ["wsman", command, env.host, *args, "--port", str(env.port)]
    return await asyncio.to_thread(cli, *argv, env={"AMT_PASSWORD": password or env.password})


async def test_identify(env: RunningEngine) -> None:
    result = await asyncio.to_thread(cli, "wsman", "identify", env.host, "--port", str(env.port), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["product_vendor"] == "Intel Corporation"


async def test_get_as_json_and_table(env: RunningEngine) -> None:
    result = await device(env, "get", "AMT_GeneralSettings", "--json")
    assert result.exit_code == 0, result.output
    props = json.loads(result.stdout)["properties"]
    assert props["DigestRealm"] == env.engine.realm
    assert props["DDNSTTL"] == 900
    table = await device(env, "get", "CIM_SoftwareIdentity", "-s", "InstanceID=AMT")
    assert table.exit_code == 0, table.output
    assert "VersionString" in table.stdout
    assert "16.1.30" in table.stdout


async def test_enumerate_objects_and_references(env: RunningEngine) -> None:
    objects = await device(env, "enumerate", "CIM_SoftwareIdentity", "--json")
    assert objects.exit_code == 0, objects.output
    assert len(json.loads(objects.stdout)) == 11
    refs = await device(env, "enumerate", "CIM_SoftwareIdentity", "--mode", "epr", "--json")
    assert refs.exit_code == 0, refs.output
    assert {"InstanceID": "AMT"} in [r["selectors"] for r in json.loads(refs.stdout)]
    table = await device(env, "enumerate", "CIM_SoftwareIdentity", "--mode", "epr")
    assert "CIM_SoftwareIdentity?InstanceID=AMT" in table.stdout
    both = await device(env, "enumerate", "CIM_SoftwareIdentity", "--mode", "obj-epr")
    assert both.exit_code == 0, both.output
    assert "reference: CIM_SoftwareIdentity?InstanceID=AMT" in both.stdout
    assert "VersionString" in both.stdout


async def test_put_types_values_through_the_catalog(env: RunningEngine) -> None:
    result = await device(env, "put", "AMT_GeneralSettings", "HostName=cli-host", "DDNSTTL=600",
                          "SharedFQDN=false", "--json")
    assert result.exit_code == 0, result.output
    props = json.loads(result.stdout)["properties"]
    assert (props["HostName"], props["DDNSTTL"], props["SharedFQDN"]) == ("cli-host", 600, False)
    async with AmtClient(env.host, password=env.password, port=env.port) as client:
        stored = await client.get("AMT_GeneralSettings")
    assert (stored["HostName"], stored["DDNSTTL"], stored["SharedFQDN"]) == ("cli-host", 600, False)


async def test_put_refuses_bad_input_before_changing_anything(env: RunningEngine) -> None:
    mistyped = await device(env, "put", "AMT_GeneralSettings", "DDNSTTL=soon")
    assert mistyped.exit_code == 2
    assert "DDNSTTL is a number" in mistyped.stderr
    unknown = await device(env, "put", "AMT_GeneralSettings", "Colour=blue")
    assert unknown.exit_code == 2
    assert "no property Colour" in unknown.stderr
    async with AmtClient(env.host, password=env.password, port=env.port) as client:
        assert (await client.get("AMT_GeneralSettings"))["DDNSTTL"] == 900


async def test_invoke_with_reference_parameter(env_and_calls: tuple[RunningEngine, list[CimObject]]) -> None:
    env, calls = env_and_calls
    result = await device(env, "invoke", ECHO, "Echo", "Note=hi there", "Note=again",
                          "Target=CIM_ComputerSystem?CreationClassName=CIM_ComputerSystem&Name=ManagedSystem",
                          "-s", "InstanceID=echo", "--json")
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    assert output["element"] == "Echo_OUTPUT"
    assert output["properties"] == {"Heard": "3", "ReturnValue": 0}
    [message] = calls
    assert message.getlist("Note") == ["hi there", "again"]
    assert message["Target"] == EndpointReference.to(
        resource_uri("CIM_ComputerSystem"), {"CreationClassName": "CIM_ComputerSystem", "Name": "ManagedSystem"})


# ---------------------------------------------------------------------------------------------- errors


async def test_fault_is_one_line(env: RunningEngine) -> None:
    result = await device(env, "get", "CIM_SoftwareIdentity", "-s", "InstanceID=nothing")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the device answered with a fault: DestinationUnreachable")
    assert len(result.stderr.strip().splitlines()) == 1


async def test_wrong_password(env: RunningEngine) -> None:
    result = await device(env, "get", "AMT_GeneralSettings", password="wrong")
    assert result.exit_code == 1
    assert "credentials refused" in result.stderr
    assert "Traceback" not in result.output


async def test_missing_password_without_a_terminal(env: RunningEngine) -> None:
    result = await asyncio.to_thread(cli, "wsman", "get", env.host, "AMT_GeneralSettings", "--port", str(env.port))
    assert result.exit_code == 2
    assert "no password" in result.stderr
    assert "AMT_PASSWORD" in result.stderr


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connections are refused
        result = cli("wsman", "get", "127.0.0.1", "AMT_GeneralSettings", "--port", str(port), "-p", "x")
    assert result.exit_code == 1
    assert "cannot connect" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_class_and_fingerprint_are_usage_errors() -> None:
    bad_class = cli("wsman", "get", "127.0.0.1", "GeneralSettings", "-p", "x")
    assert bad_class.exit_code == 2
    assert "not a class name" in bad_class.stderr
    bad_pin = cli("wsman", "get", "127.0.0.1", "AMT_GeneralSettings", "-p", "x", "--fingerprint", "zz")
    assert bad_pin.exit_code == 2
    assert "fingerprint" in bad_pin.stderr


async def test_password_is_asked_for_on_a_terminal(env: RunningEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, bool]] = []

    def prompt(text: str, *, hide_input: bool) -> str:
        asked.append((text, hide_input))
        return env.password

    monkeypatch.setattr(sys, "stdin", SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr(typer, "prompt", prompt)
    target = Device(env.host, "admin", None, env.port, tls=False, fingerprint=None, insecure=False, timeout=10.0,
                    json=False)
    async with target.client() as client:
        assert (await client.get("AMT_GeneralSettings"))["DigestRealm"] == env.engine.realm
    assert asked == [(f"Password for admin@{env.host}", True)]


async def test_tls_pinned_insecure_and_refused(tmp_path: Path) -> None:
    async with running_engine(tls_dir=tmp_path) as tls_env:
        base = ["wsman", "get", tls_env.host, "AMT_GeneralSettings", "--port", str(tls_env.tls_port), "--json"]
        secret = {"AMT_PASSWORD": tls_env.password}
        pinned = await asyncio.to_thread(cli, *base, "--fingerprint", fingerprint_of(tmp_path / "cert.pem"),
                                         env=secret)
        assert pinned.exit_code == 0, pinned.output
        assert json.loads(pinned.stdout)["properties"]["DigestRealm"] == tls_env.engine.realm
        insecure = await asyncio.to_thread(cli, *base, "--insecure", env=secret)
        assert insecure.exit_code == 0, insecure.output
        verified = await asyncio.to_thread(cli, *base, "--tls", env=secret)
        assert verified.exit_code == 1
        assert "certificate" in verified.stderr
