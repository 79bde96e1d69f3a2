"""Hostile APF input at the console's MPS: bytes that are not TLS, garbage inside TLS, broken logins, and a
device that logs in properly and then sends garbage.  The MPS must refuse each connection on its own -- no
error logged, nothing left online, no tunnel kept -- and go on serving a real engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import uuid
from pathlib import Path

import pytest
from tests.console._mpskit import (
    MPS_PASSWORD,
    MPS_USER,
    WITHIN,
    add_cira_device,
    dial,
    dialling_engine,
    presence,
    sim_machine,
    start_mps,
    stored_online,
)

from outband.console.mps import MpsService
from outband.console.runtime import Runtime
from outband.proto.apf import DecodeOptions, ProtocolError, decode_message
from outband.proto.apf.codec import (
    ChannelData,
    ChannelOpen,
    KeepaliveRequest,
    Message,
    OtherGlobalRequest,
    ProtocolVersion,
    RequestSuccess,
    ServiceRequest,
    TcpipForward,
    UserAuthRequest,
    UserAuthSuccess,
)
from outband.proto.apf.constants import MessageType

AMT_PASSWORD = "Amt!pass-1234"
ROUNDS = 40
SEED = 4433


def login(system_uuid: uuid.UUID) -> list[bytes]:
    return [m.encode() for m in (ProtocolVersion(system_uuid), ServiceRequest("auth@amt.intel.com"),
                                 UserAuthRequest(MPS_USER, MPS_PASSWORD))]


def after_login() -> list[bytes]:
    return [ServiceRequest("pfwd@amt.intel.com").encode(), TcpipForward("hostile", 16992).encode()]


def garbage(rng: random.Random, valid: list[bytes]) -> bytes:
    """Random bytes, a valid message cut or with a byte changed, or a header announcing a huge length."""
    kind = rng.randrange(5)
    sample = rng.choice(valid)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 400))
    if kind == 1:
        return sample[:rng.randrange(len(sample))] + rng.randbytes(rng.randrange(64))
    if kind == 2:
        at = rng.randrange(len(sample))
        return sample[:at] + bytes([rng.randrange(256)]) + sample[at + 1:] + rng.randbytes(8)
    if kind == 3:
        announced = rng.choice([2**31, 2**32 - 1, 1 << 20, 70_000])
        return bytes([rng.choice(list(MessageType))]) + announced.to_bytes(4, "big") + rng.randbytes(32)
    return ChannelData(rng.randrange(2**32), rng.randbytes(rng.randrange(100))).encode()


ANSWER_AWAITED: dict[int, type[Message]] = {MessageType.USERAUTH_REQUEST: UserAuthSuccess,
                                             MessageType.GLOBAL_REQUEST: RequestSuccess}
"""A login goes on only once the MPS has answered these (the MPS checks the password asynchronously)."""


def replies(heard: bytes) -> list[Message]:
    """The MPS's messages in what it sent (up to the first incomplete or unreadable one)."""
    found: list[Message] = []
    at = 0
    with contextlib.suppress(ProtocolError):
        while (decoded := decode_message(heard, DecodeOptions(success_has_port=True), start=at)) is not None:
            found.append(decoded[0])
            at += decoded[1]
    return found


async def exchange(mps: MpsService, first: list[bytes], then: bytes, *, tls: bool = True) -> list[Message]:
    """Send ``first`` (a login, step by step), then ``then``; return what the MPS said before it closed."""
    context = ssl.create_default_context(cafile=str(mps.cert_file)) if tls else None
    reader, writer = await asyncio.open_connection("127.0.0.1", mps.port, ssl=context,
                                                   server_hostname="127.0.0.1" if tls else None)
    heard = bytearray()
    try:
        async with asyncio.timeout(WITHIN):
            for message in first:
                writer.write(message)
                wanted = ANSWER_AWAITED.get(message[0])
                while wanted is not None and not any(isinstance(m, wanted) for m in replies(heard)):
                    chunk = await reader.read(4096)
                    if not chunk:
                        return replies(heard)
                    heard += chunk
            writer.write(then)
            while chunk := await reader.read(4096):
                heard += chunk
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    return replies(bytes(heard))


@pytest.fixture
def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    caplog.set_level(logging.WARNING, logger="outband")
    return caplog.records


async def test_hostile_input_is_refused_connection_by_connection(runtime: Runtime, tmp_path: Path,
                                                                 errors_logged: list[logging.LogRecord]) -> None:
    mps = await start_mps(runtime, mps_idle_timeout=1.0)
    hostile = sim_machine("hostile")
    hostile_id = await add_cira_device(runtime, "hostile", hostile, AMT_PASSWORD)
    hostile_uuid = uuid.UUID(hostile.profile.system_uuid)
    valid = [*login(hostile_uuid), *after_login(), KeepaliveRequest(7).encode(), OtherGlobalRequest("x", True).encode(),
             ChannelOpen("direct-tcpip", 1, 2**32 - 1, "a", 16992, "b", 1).encode()]
    rng = random.Random(SEED)
    rounds = []
    for round_number in range(ROUNDS):  # the inputs first (reproducible), then all at once
        stage = round_number % 4
        if stage == 0:  # not even TLS
            rounds.append(exchange(mps, [], rng.randbytes(rng.randrange(1, 600)), tls=False))
        elif stage == 1:  # garbage instead of a hello
            rounds.append(exchange(mps, [], garbage(rng, valid)))
        elif stage == 2:  # a login broken part way
            rounds.append(exchange(mps, login(hostile_uuid)[:rng.randrange(1, 3)], garbage(rng, valid)))
        else:  # a device that logs in properly, registers its port, then turns hostile
            rounds.append(exchange(mps, [*login(hostile_uuid), *after_login()], garbage(rng, valid)))
    said = await asyncio.gather(*rounds)
    logged_in = sum(any(isinstance(m, RequestSuccess) for m in replies) for replies in said)
    assert logged_in == ROUNDS // 4  # every logged-in round really got that far (its presence was written)
    await mps.presence.flushed()
    row = await presence(runtime, hostile_id)
    assert row is not None
    assert row.online is False  # every one of its tunnels ended
    assert hostile_id not in mps.registry

    machine = sim_machine("after")
    device_id = await add_cira_device(runtime, "after", machine, AMT_PASSWORD)
    async with dialling_engine(tmp_path, dial(mps), machine, AMT_PASSWORD):
        await stored_online(runtime, device_id, True)  # still serving
    assert not [r for r in errors_logged if r.levelno >= logging.ERROR], [r.getMessage() for r in errors_logged]
