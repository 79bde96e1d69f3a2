"""Fleet mode stays small without changing what each engine is: engines share what holds no state of theirs
(the handler registry, the admin's realm set, the CIRA pacing), build their console screen only when used, start
in one commit, and still answer with identities of their own."""

from __future__ import annotations

import errno
import ipaddress
import resource
from pathlib import Path

import pytest

from outband.aio.wsman_client import WsmanTransport
from outband.engine.acl import ALL_REALMS
from outband.engine.cira import DEFAULT_TUNING, client_of
from outband.engine.launcher import LaunchOptions, launch
from outband.engine.platforms.profile import HardwareProfile, Nic, _host_in_subnet
from outband.engine.platforms.sim import SimMachine
from outband.engine.server import EngineServer, Ports
from outband.proto.cim.model import CimObject
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine

PASSWORD = "Fleet!Pass1word"


def reference_host(nic: Nic, n: int) -> str:
    """The rule spelled out: the n-th (cyclically) of offsets 2..255 in the subnet, short of the broadcast
    address, without the gateway."""
    network = ipaddress.IPv4Network(f"{nic.ipv4}/{nic.subnet_mask}", strict=False)
    hosts = [str(network.network_address + k) for k in range(2, min(network.num_addresses - 1, 256))]
    hosts = [h for h in hosts if h != nic.gateway]
    return hosts[n % len(hosts)] if hosts else nic.ipv4


def test_instantiated_nics_take_the_nth_free_host_of_their_subnet() -> None:
    nics = [
        Nic(),  # 192.168.0.24/24, gateway .1 (below the first offset)
        Nic(gateway="192.168.0.2"), Nic(gateway="192.168.0.130"), Nic(gateway="192.168.0.254"), Nic(gateway=""),
        Nic(gateway="10.9.9.9"), Nic(gateway="not an address"),
        Nic(ipv4="10.1.2.3", subnet_mask="255.255.0.0", gateway="10.1.0.1"),
        Nic(ipv4="10.1.2.3", subnet_mask="255.255.255.248", gateway="10.1.2.4"),
        Nic(ipv4="10.1.2.3", subnet_mask="255.255.255.252", gateway="10.1.2.1"),  # no host left: keeps its own
        Nic(ipv4="10.1.2.3", subnet_mask="255.255.255.255", gateway=""),
    ]
    for nic in nics:
        for n in [*range(0, 520, 3), 65_535, 65_536 + 7]:
            assert _host_in_subnet(nic, n) == reference_host(nic, n), (nic, n)
    assert _host_in_subnet(Nic(ipv4=""), 5) == ""
    twins = [HardwareProfile().instantiate(i).nics[0].ipv4 for i in range(50)]
    assert all(ipaddress.IPv4Address(a) in ipaddress.IPv4Network("192.168.0.0/24") for a in twins)
    assert "192.168.0.1" not in twins


async def test_a_fleet_shares_what_is_not_per_engine_and_answers_with_its_own_identity(tmp_path: Path) -> None:
    base = "127.78.0.1"
    options = LaunchOptions(http_port=0, tls_port=None, redirection_port=None, redirection_tls_port=None,
                            state_dir=tmp_path, admin_password=PASSWORD, fleet=3, fleet_base=base)
    launched = await launch(options)
    try:
        engines = list(launched.engines.values())
        assert len({id(e.registry) for e in engines}) == 1
        assert all(e.accounts.admin is not None and e.accounts.admin.realms is ALL_REALMS for e in engines)
        clients = [client_of(e) for e in engines]
        assert all(c is not None and c.tuning is DEFAULT_TUNING for c in clients)
        machines = [e.platform for e in engines]
        assert all(isinstance(m, SimMachine) and m.console._screen is None for m in machines)

        for index, (address, engine) in enumerate(launched.engines.items()):
            port = launched.server.bound_port(address)
            async with WsmanTransport(address, "admin", PASSWORD, port=port) as transport:
                reply = await transport.send(msg.get("AMT_GeneralSettings"))
            assert isinstance(reply.body, CimObject)
            assert reply.body["HostName"] == f"outband-sim-{index}"
            assert reply.body["DigestRealm"] == engine.realm
        assert len({e.realm for e in engines}) == 3
        assert len({e.platform.profile.system_uuid for e in engines}) == 3

        first = machines[0]
        assert isinstance(first, SimMachine)
        assert first.console.screen.text() == [" " * 80] * 25  # made on demand, blank as a fresh screen
    finally:
        await launched.server.stop()
        launched.database.close()

    realms = {address: e.realm for address, e in launched.engines.items()}
    again = await launch(LaunchOptions(http_port=0, tls_port=None, redirection_port=None, redirection_tls_port=None,
                                       state_dir=tmp_path, fleet=3, fleet_base=base))
    try:  # the one commit of the first start kept every engine's realm and admin
        assert again.generated_password is None
        assert {address: e.realm for address, e in again.engines.items()} == realms
    finally:
        await again.server.stop()
        again.database.close()


async def test_a_fleet_beyond_the_descriptor_limit_is_refused_before_binding_anything(
    engine_env: RunningEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = {"soft": 200, "hard": 300}
    monkeypatch.setattr(resource, "getrlimit", lambda _: (limits["soft"], limits["hard"]))
    monkeypatch.setattr(resource, "setrlimit", lambda _, pair: limits.update(soft=pair[0]))
    addresses = [f"127.79.0.{i}" for i in range(1, 101)]
    server = EngineServer(dict.fromkeys(addresses, engine_env.engine), Ports(0, None))
    with pytest.raises(OSError, match=r"100 engines with 1 listening port\(s\) each need 356 file descriptors, "
                                      r"but this process may open 300") as refused:
        await server.start()
    assert refused.value.errno == errno.EMFILE
    assert limits["soft"] == 300  # raised as far as the hard limit allows before giving up
    assert not server._servers
    await server.stop()
