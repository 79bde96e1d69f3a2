"""AMT's security history as tests against the engine's real HTTP listener (AMT-PROTOCOLS.md §7).

Hand-made requests on a raw aiohttp session, so nothing in our own client can paper over a server mistake:
CVE-2017-5689's empty and truncated digests, replayed nonce counts, anti-hammering, hostile XML and bodies,
an OptionSet that must be understood, and realms enforced on every call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from tests.engine.fakeclock import FakeMonotonic

from outband.aio.wsman_server import MAX_REQUEST_BYTES
from outband.engine.acl import Account
from outband.engine.platforms.base import PowerState
from outband.proto.amt import Realm
from outband.proto.amtlog import AuditRecord
from outband.proto.cim.model import CimObject
from outband.proto.digest import build_authorization, compute_response, ha1, parse_challenge
from outband.proto.wsman import EndpointReference, Envelope, parse_envelope
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine, running_engine

URI = "/wsman"
GET_GENERAL = msg.get("AMT_GeneralSettings").to_bytes()


@dataclass
class RawDigest:
    """A Digest client with every field in the test's hands."""

    env: RunningEngine
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env.port}{URI}"

    async def post(self, body: bytes, authorization: str | None = None) -> tuple[int, bytes, dict[str, str]]:
        headers = {"Content-Type": "application/soap+xml;charset=UTF-8"}
        if authorization is not None:
            headers["Authorization"] = authorization
        async with self.session.post(self.url, data=body, headers=headers) as resp:
            return resp.status, await resp.read(), dict(resp.headers)

    async def nonce(self) -> str:
        status, _, headers = await self.post(GET_GENERAL)
        assert status == 401
        return parse_challenge(headers["WWW-Authenticate"]).nonce

    def header(self, nonce: str, *, password: str | None = None, nc: int = 1, response: str | None = None,
               username: str = "admin", cnonce: str = "0a4f113b") -> str:
        if response is None:
            secret = ha1(username, self.env.engine.realm, password or self.env.password)
            response = compute_response(ha1=secret, method="POST", uri=URI, nonce=nonce, qop="auth",
                                        nc=f"{nc:08x}", cnonce=cnonce)
        return build_authorization(username=username, realm=self.env.engine.realm, nonce=nonce, uri=URI,
                                   response=response, qop="auth", nc=f"{nc:08x}", cnonce=cnonce)


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
async def env(clock: FakeMonotonic) -> AsyncIterator[RunningEngine]:
    async with running_engine(monotonic=clock) as running:
        yield running


@pytest.fixture
async def raw(env: RunningEngine) -> AsyncIterator[RawDigest]:
    async with aiohttp.ClientSession() as session:
        yield RawDigest(env, session)


def fault_of(status: int, body: bytes) -> F.WsmanFault:
    assert status == 400, status
    fault = parse_envelope(body).fault
    assert fault is not None
    return fault


async def test_cve_2017_5689_empty_and_partial_responses_never_authenticate(raw: RawDigest) -> None:
    nonce = await raw.nonce()
    right = raw.header(nonce)
    correct = right.split('response="', 1)[1][:32]
    forged = ["", correct[:1], correct[:16], correct[:31], correct + "0", "z" * 32, correct.upper()[:31] + " "]
    for nc, response in enumerate(forged, start=1):
        status, _, headers = await raw.post(GET_GENERAL, raw.header(nonce, nc=nc, response=response))
        assert status == 401, response
        assert headers["WWW-Authenticate"].startswith('Digest realm="Digest:')
    missing = right.replace(f'response="{correct}",', "")
    assert (await raw.post(GET_GENERAL, missing))[0] == 401
    # Only the whole digest opens the door (with a count above the ones tried).
    status, body, _ = await raw.post(GET_GENERAL, raw.header(nonce, nc=len(forged) + 1))
    assert status == 200
    assert parse_envelope(body).fault is None
    failed = [r for r in map(AuditRecord.decode, raw.env.engine.store.read_log("audit")) if r.full_id == 1605]
    assert len(failed) == len(forged) + 1
    assert all(r.initiator == "admin" for r in failed)


async def test_a_replayed_nonce_count_is_refused(raw: RawDigest) -> None:
    nonce = await raw.nonce()
    first = raw.header(nonce, nc=1)
    assert (await raw.post(GET_GENERAL, first))[0] == 200
    assert (await raw.post(GET_GENERAL, first))[0] == 401  # the very same header again
    assert (await raw.post(GET_GENERAL, raw.header(nonce, nc=5)))[0] == 200
    assert (await raw.post(GET_GENERAL, raw.header(nonce, nc=3)))[0] == 401  # counts only go up


async def test_ten_failures_lock_logins_out_for_five_seconds(raw: RawDigest, clock: FakeMonotonic) -> None:
    nonce = await raw.nonce()
    for nc in range(1, 11):
        assert (await raw.post(GET_GENERAL, raw.header(nonce, nc=nc, password="guess-" + str(nc))))[0] == 401
    assert (await raw.post(GET_GENERAL, raw.header(nonce, nc=11)))[0] == 401  # right password, locked out
    clock.advance(4.9)
    assert (await raw.post(GET_GENERAL, raw.header(nonce, nc=12)))[0] == 401
    clock.advance(0.2)
    assert (await raw.post(GET_GENERAL, raw.header(nonce, nc=13)))[0] == 200


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
               for i in range(1, 10))
    + b']><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header></s:Header>'
    b"<s:Body>&lol9;</s:Body></s:Envelope>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header></s:Header>'
    b"<s:Body>&xxe;</s:Body></s:Envelope>"
)


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
async def test_hostile_xml_is_a_fault_and_the_engine_keeps_serving(raw: RawDigest, document: bytes) -> None:
    nonce = await raw.nonce()
    status, _, _ = await raw.post(document)
    assert status == 401  # nothing is parsed before the login
    status, body, _ = await raw.post(document, raw.header(nonce, nc=1))
    fault = fault_of(status, body)
    assert isinstance(fault, F.SchemaValidationError | F.EncodingLimit)
    assert b"root:" not in body
    assert b"lollol" not in body
    assert (await raw.post(GET_GENERAL, raw.header(nonce, nc=2)))[0] == 200


async def test_oversized_bodies_are_refused_before_they_are_read(raw: RawDigest) -> None:
    nonce = await raw.nonce()
    huge = GET_GENERAL + b" " * (MAX_REQUEST_BYTES + 1)
    for authorization in (None, raw.header(nonce, nc=1)):
        status, body, _ = await raw.post(huge, authorization)
        assert isinstance(fault_of(status, body), F.EncodingLimit)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked transfer
        for _ in range(MAX_REQUEST_BYTES // 65536 + 2):
            yield b" " * 65536

    headers = {"Authorization": raw.header(nonce, nc=2), "Content-Type": "application/soap+xml"}
    async with raw.session.post(raw.url, data=chunks(), headers=headers) as resp:
        assert isinstance(fault_of(resp.status, await resp.read()), F.EncodingLimit)
    async with aiohttp.ClientSession() as fresh:  # the refusal closed that connection; the engine lives on
        raw.session = fresh
        assert (await raw.post(GET_GENERAL, raw.header(nonce, nc=3)))[0] == 200


OPTION_SET_GET = """<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:To>/wsman</a:To>
<w:ResourceURI s:mustUnderstand="true">http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings</w:ResourceURI>
<a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address>
</a:ReplyTo><a:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>
<a:MessageID>uuid:4f9a54c6-9d0b-4e1a-8a52-5d3c2a7d0001</a:MessageID>{option_set}</s:Header><s:Body></s:Body></s:Envelope>"""


async def test_an_option_set_that_must_be_understood_is_a_fault(raw: RawDigest) -> None:
    nonce = await raw.nonce()
    plain = OPTION_SET_GET.format(option_set="").encode()
    assert (await raw.post(plain, raw.header(nonce, nc=1)))[0] == 200
    option_set = ('<w:OptionSet s:mustUnderstand="true"><w:Option Name="IncludeInheritedElements">true</w:Option>'
                  "</w:OptionSet>")
    status, body, _ = await raw.post(OPTION_SET_GET.format(option_set=option_set).encode(), raw.header(nonce, nc=2))
    assert isinstance(fault_of(status, body), F.MustUnderstand)


async def test_realms_are_enforced_on_every_call(env: RunningEngine) -> None:
    engine = env.engine
    engine.accounts.save(Account(7, "inventory", ha1("inventory", engine.realm, "Inv3ntory!"),
                                 frozenset({Realm.HARDWARE_ASSET})))
    user = env.transport("inventory", "Inv3ntory!")
    chassis = await user.send(msg.get("CIM_Chassis"))
    assert chassis.fault is None
    assert isinstance(chassis.body, CimObject)
    assert chassis.body["Tag"] == "CIM_Chassis"

    settings = await env.transport().send(msg.get("AMT_GeneralSettings"))
    assert isinstance(settings.body, CimObject)
    settings.body["HostName"] = "renamed"
    power = CimObject.method_input(
        "CIM_PowerManagementService", "RequestPowerStateChange", PowerState=2,
        ManagedElement=EndpointReference.to("http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ComputerSystem",
                                            {"CreationClassName": "CIM_ComputerSystem", "Name": "ManagedSystem"}))
    before = env.machine.power_state
    denied: list[Envelope] = [msg.get("AMT_GeneralSettings"), msg.put(settings.body), msg.invoke(power),
                              msg.invoke(CimObject.method_input("AMT_AuthorizationService", "GetAdminAclEntry"))]
    for request in denied:
        status, body = await user.post(request.to_bytes())
        assert isinstance(fault_of(status, body), F.AccessDenied), request.header.action
    assert before is not PowerState.ON  # so a power-on that got through would show
    assert env.machine.power_state is before
    host = await env.transport().send(msg.get("AMT_GeneralSettings"))
    assert host.body["HostName"] != "renamed"  # type: ignore[index]
    # The same power request from the admin goes through: the refusals above were the realm's doing.
    admin = await env.transport().send(msg.invoke(power))
    assert admin.body["ReturnValue"] == 0  # type: ignore[index]
    assert env.machine.power_state is PowerState.ON


async def test_a_request_sent_in_pieces_is_read_whole(raw: RawDigest) -> None:
    nonce = await raw.nonce()

    async def pieces() -> AsyncIterator[bytes]:
        half = len(GET_GENERAL) // 2
        yield GET_GENERAL[:half]
        await asyncio.sleep(0.05)
        yield GET_GENERAL[half:]

    headers = {"Authorization": raw.header(nonce, nc=1), "Content-Type": "application/soap+xml"}
    async with raw.session.post(raw.url, data=pieces(), headers=headers) as resp:
        assert resp.status == 200
