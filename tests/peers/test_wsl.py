"""Debian's wsl (the Dell "WS-MAN shell commandline", bash + curl + xmllint) against the engine.

wsl reads its target from WSENDPOINT (host:port), WSUSER and WSPASS, talks HTTPS unless WSNOSSL is set, and
sends HTTP Basic unless curl is told to use Digest (a ``digest`` line in ~/.curlrc, AMT-PROTOCOLS.md §11).  It
writes each request and reply to request-N.xml / response-N.xml in the current directory; the tests read those
replies (wsl's exit status only says whether curl ran and a marker string was found).  On Debian wsl calls
``uuidgen`` for its MessageIDs without depending on uuid-runtime: without it the MessageID goes out empty.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from outband.testing.engine import RunningEngine
from outband.testing.peers import PeerRun, isolated_home, require_program, run_peer

pytestmark = pytest.mark.peer

SOAP = "{http://www.w3.org/2003/05/soap-envelope}"
WSMID = "{http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd}"
AMT = "http://intel.com/wbem/wscim/1/amt-schema/1/"
CIM = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"


@dataclass
class Wsl:
    home: Path
    run: Callable[..., Awaitable[PeerRun]]

    def replies(self) -> list[etree._Element]:
        """The SOAP Bodies of this run's replies, in order (wsl numbers them response-1.xml, -2, ...)."""
        files = sorted(self.home.glob("response-*.xml"), key=lambda p: int(re.findall(r"\d+", p.name)[0]))
        assert files, "wsl saved no reply"
        bodies = []
        for file in files:
            root = etree.fromstring(file.read_bytes(), etree.XMLParser(resolve_entities=False, no_network=True))
            assert root.tag == f"{SOAP}Envelope", f"{file.name} is not a SOAP envelope"
            body = root.find(f"{SOAP}Body")
            assert body is not None, f"{file.name} has no Body"
            assert len(body), f"{file.name} has an empty Body"
            fault = body.find(f"{SOAP}Fault")
            assert fault is None, f"{file.name} is a fault: {etree.tostring(fault, encoding='unicode')}"
            bodies.append(body)
        return bodies

    async def ok(self, *args: str, program: str = "wsl") -> list[etree._Element]:
        result = await self.run(*args, program=program)
        assert result.returncode == 0, result.describe()
        return self.replies()


async def wsl_against(env: RunningEngine, home: Path, *, tls: bool) -> AsyncIterator[Wsl]:
    (home / ".curlrc").write_text("digest\n")
    environment = isolated_home(home, WSENDPOINT=f"{env.host}:{env.tls_port if tls else env.port}",
                                WSUSER="admin", WSPASS=env.password)
    if not tls:
        environment["WSNOSSL"] = "true"

    async def run(*args: str, program: str = "wsl") -> PeerRun:
        return await run_peer([require_program(program), *args], env=environment, cwd=home, kill_after=20)

    yield Wsl(home, run)


@pytest.fixture
async def wsl(peer_env: RunningEngine, tmp_path: Path) -> AsyncIterator[Wsl]:
    async for w in wsl_against(peer_env, tmp_path, tls=False):
        yield w


@pytest.fixture
async def wsl_tls(peer_tls_env: RunningEngine, tmp_path: Path) -> AsyncIterator[Wsl]:
    async for w in wsl_against(peer_tls_env, tmp_path, tls=True):
        yield w


def instances(bodies: list[etree._Element], class_name: str, schema: str) -> list[etree._Element]:
    return [e for body in bodies for e in body.iter(f"{{{schema}{class_name}}}{class_name}")]


def text(element: etree._Element, prop: str) -> str:
    found = element.find(f"{{{element.tag[1:].split('}')[0]}}}{prop}")
    assert found is not None, f"no {prop} in {element.tag}"
    return found.text or ""


async def test_identify(wsl: Wsl) -> None:
    """wsl's Identify goes out with credentials (curl's Digest handshake), so the engine must answer it
    authenticated too, with the IdentifyResponse and not a fault."""
    [body] = await wsl.ok("identify", "check")
    response = body.find(f"{WSMID}IdentifyResponse")
    assert response is not None, etree.tostring(body, encoding="unicode")
    assert "Intel" in (response.findtext(f"{WSMID}ProductVendor") or "")
    assert response.findtext(f"{WSMID}ProtocolVersion") == "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"


async def test_get_general_settings(wsl: Wsl, peer_env: RunningEngine) -> None:
    [body] = await wsl.ok("get", AMT + "AMT_GeneralSettings", "InstanceID=Intel(r) AMT: General Settings")
    [settings] = instances([body], "AMT_GeneralSettings", AMT)
    assert text(settings, "DigestRealm") == peer_env.engine.realm


async def test_get_with_two_selectors_and_class_shorthand(wsl: Wsl) -> None:
    """wsl expands a bare CIM_ class name to the DMTF URI and sends one Selector per NAME=VALUE."""
    [body] = await wsl.ok("get", "CIM_ComputerSystem", "CreationClassName=CIM_ComputerSystem", "Name=ManagedSystem")
    [system] = instances([body], "CIM_ComputerSystem", CIM)
    assert text(system, "Name") == "ManagedSystem"


async def test_enumerate_optimized(wsl: Wsl) -> None:
    """``wsl enum`` always asks for an optimized enumeration (items in the EnumerateResponse, MaxElements 512)
    and pulls while the reply carries an EnumerationContext."""
    bodies = await wsl.ok("enum", "CIM_SoftwareIdentity")
    found = instances(bodies, "CIM_SoftwareIdentity", CIM)
    assert len(found) == 11
    assert any(text(i, "InstanceID") == "AMT" for i in found)


async def test_enumerate_then_pull(wsl: Wsl) -> None:
    """``wslenum`` run directly (without the wsl wrapper's optimization) does the classic Enumerate, then Pull
    until a reply has no EnumerationContext."""
    bodies = await wsl.ok("CIM_SoftwareIdentity", program="wslenum")
    assert len(bodies) >= 2, "an unoptimized enumeration takes an Enumerate and at least one Pull"
    assert len(instances(bodies, "CIM_SoftwareIdentity", CIM)) == 11


async def test_get_over_tls(wsl_tls: Wsl, peer_tls_env: RunningEngine) -> None:
    """wsl's default: HTTPS to the given port, certificate not checked (curl --insecure)."""
    [body] = await wsl_tls.ok("get", AMT + "AMT_GeneralSettings", "InstanceID=Intel(r) AMT: General Settings")
    [settings] = instances([body], "AMT_GeneralSettings", AMT)
    assert text(settings, "DigestRealm") == peer_tls_env.engine.realm
