"""Transports sharing one DigestState against a real engine: the nonce one proved is answered at once by the
next, a nonce the engine dropped costs one stale retry and no counted failure, a wrong password costs one counted
failure per attempt and never rides on a cached nonce, and concurrent transports keep nc in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from tests.client._engine_tap import tap

from outband.aio.errors import AuthenticationError
from outband.aio.wsman_client import DigestState, WsmanTransport
from outband.client import AmtClient
from outband.proto.digest import DigestClient, Reason
from outband.testing.engine import RunningEngine, running_engine

OK, MISSING, STALE, BAD = Reason.OK, Reason.MISSING, Reason.STALE_NONCE, Reason.BAD_CREDENTIALS


@pytest.fixture
async def env() -> AsyncIterator[RunningEngine]:
    async with running_engine() as running:
        yield running


def shared(env: RunningEngine, password: str | None = None) -> DigestState:
    return DigestState(DigestClient("admin", env.password if password is None else password))


async def get_settings(env: RunningEngine, state: DigestState, **kwargs: object) -> str:
    """One Get through a new transport on ``state`` (a job attempt); returns the realm it read."""
    transport = WsmanTransport(env.host, port=env.port, digest=state, **kwargs)  # type: ignore[arg-type]
    async with AmtClient(env.host, transport=transport) as client:
        try:
            realm = (await client.get("AMT_GeneralSettings"))["DigestRealm"]
        finally:
            await transport.close()
    assert isinstance(realm, str)
    return realm


async def test_the_next_transport_answers_at_once_with_the_proven_nonce(env: RunningEngine) -> None:
    seen = tap(env.engine)
    state = shared(env)
    assert await get_settings(env, state) == env.engine.realm
    assert seen.reasons == [MISSING, OK]
    assert await get_settings(env, state) == env.engine.realm
    assert await get_settings(env, state) == env.engine.realm
    assert seen.reasons == [MISSING, OK, OK, OK]  # one request per Get after the first
    assert seen.nonce_counts == [1, 2, 3]
    assert seen.failures == []


async def test_a_transport_of_its_own_still_pays_the_challenge(env: RunningEngine) -> None:
    seen = tap(env.engine)
    for _ in range(2):
        transport = env.transport()
        await AmtClient(env.host, transport=transport).get("AMT_GeneralSettings")
    assert seen.reasons == [MISSING, OK, MISSING, OK]


async def test_a_nonce_past_its_idle_time_costs_one_stale_retry_and_no_failure() -> None:
    now = [1000.0]
    async with running_engine(monotonic=lambda: now[0]) as env:
        seen = tap(env.engine)
        state = shared(env)
        await get_settings(env, state)
        now[0] += 301.0  # the verifier forgets a nonce idle for 300 s
        assert await get_settings(env, state) == env.engine.realm
        assert seen.reasons == [MISSING, OK, STALE, OK]
        assert seen.nonce_counts == [1, 2, 1]
        assert seen.failures == []
        assert await get_settings(env, state) == env.engine.realm  # the new nonce is proven and reused
        assert seen.reasons[4:] == [OK]


async def test_a_restarted_engine_costs_one_stale_retry_and_no_failure(tmp_path: Path) -> None:
    state_file, password = tmp_path / "engine.db", "Aa1!restart-" + "x" * 8
    state: DigestState | None = None
    async with running_engine(state=state_file, password=password) as env:
        state = shared(env)
        await get_settings(env, state)
    async with running_engine(state=state_file, password=password) as env:  # same realm, no nonce of before
        seen = tap(env.engine)
        assert await get_settings(env, state) == env.engine.realm
        assert seen.reasons == [STALE, OK]
        assert seen.failures == []


async def test_a_wrong_password_is_refused_once_per_attempt(env: RunningEngine) -> None:
    seen = tap(env.engine)
    wrong = shared(env, "Wrong-password-1!")
    for attempt in range(1, 4):
        with pytest.raises(AuthenticationError, match="credentials refused"):
            await get_settings(env, wrong)
        assert wrong.client is not None
        assert wrong.client.challenge is None
        assert seen.reasons == [MISSING, BAD] * attempt
        assert len(seen.failures) == attempt


async def test_a_challenge_never_proven_is_not_retried_on_a_wrong_password(env: RunningEngine) -> None:
    """A transport cancelled after adopting a challenge leaves it unproven: the next attempt answers it, and a
    refusal there is final -- retrying with a second challenge would cost the device a second counted failure."""
    seen = tap(env.engine)
    wrong = shared(env, "Wrong-password-1!")
    wrong.adopt(env.engine.verifier.challenge())
    with pytest.raises(AuthenticationError, match="credentials refused"):
        await get_settings(env, wrong)
    assert seen.reasons == [BAD]
    assert seen.failures == [BAD]


async def test_a_password_changed_on_the_device_is_refused_and_forgotten(env: RunningEngine) -> None:
    """A proven nonce answered with credentials the device no longer takes: the 401 may mean a dropped nonce, so
    one retry on a fresh challenge, whose refusal is final; after that nothing is cached."""
    seen = tap(env.engine)
    state = shared(env)
    await get_settings(env, state)
    assert state.client is not None
    state.client = DigestClient("admin", "Changed-meanwhile-1!")  # what the cache would hold after a change
    state.client.handle_challenge(env.engine.verifier.challenge())
    state.proven = True
    with pytest.raises(AuthenticationError, match="credentials refused"):
        await get_settings(env, state)
    assert seen.reasons == [MISSING, OK, BAD, BAD]
    assert state.client.challenge is None
    assert not state.proven


async def test_concurrent_transports_keep_nc_in_the_order_the_engine_sees(env: RunningEngine) -> None:
    """Two transports on separate connection pools (as CIRA channels are) sharing one nonce: every request is
    judged with a count above the last, so none is refused as a replay."""
    seen = tap(env.engine)
    state = shared(env)
    async with aiohttp.ClientSession() as first, aiohttp.ClientSession() as second:
        clients = [AmtClient(env.host, transport=WsmanTransport(env.host, port=env.port, digest=state,
                                                                 session=session)) for session in (first, second)]
        replies = await asyncio.gather(*(clients[i % 2].get("CIM_SoftwareIdentity", {"InstanceID": "AMT"})
                                         for i in range(40)))
    assert all(reply["InstanceID"] == "AMT" for reply in replies)
    assert seen.reasons == [MISSING] + [OK] * 40
    assert seen.nonce_counts == list(range(1, 41))
    assert seen.failures == []


def test_a_password_and_a_shared_state_do_not_mix() -> None:
    with pytest.raises(ValueError, match="not both"):
        WsmanTransport("127.0.0.1", "admin", "pw", digest=DigestState(DigestClient("admin", "pw")))
