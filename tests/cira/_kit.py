"""An engine with all its listeners on ephemeral loopback ports and a CIRA client, for the CIRA tests."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from outband.aio.tls import generate_self_signed, server_context
from outband.aio.wsman_client import WsmanTransport
from outband.client.amt import AmtClient
from outband.engine import cira
from outband.engine.core import Engine, EngineConfig, all_services
from outband.engine.platforms.base import PowerState
from outband.engine.platforms.console import ConsoleTiming, SimConsole
from outband.engine.platforms.sim import SimMachine
from outband.engine.server import EngineServer, Ports
from outband.engine.state import Database, StateStore
from outband.proto.wsman import EndpointReference
from outband.proto.wsman.namespaces import resource_uri
from outband.testing.mps import LoopbackMps

FAST = cira.CiraTuning(backoff=cira.Backoff(base=0.05, cap=0.4), config_poll=0.05, keepalive_interval=0.2,
                       dial_timeout=5.0)
"""Short delays so reconnects and keepalives happen within a test (never asserted as timings)."""
MPS_USER = "0123456789abcdef"
MPS_PASSWORD = "Mps!Passw0rd"
ALL_REDIRECTION = 32768 + 1 + 2
PERIODIC_25S = base64.b64decode("AAAAAAAAABk=")


async def enable_redirection(amt: AmtClient) -> None:
    """Switch SOL, IDE-R and KVM on without user consent, the way consoles do (over a tunnel too)."""
    service = await amt.get("AMT_RedirectionService")
    service["ListenerEnabled"] = True
    await amt.put(service)
    output = await amt.invoke("AMT_RedirectionService", "RequestStateChange", {"RequestedState": ALL_REDIRECTION})
    assert output["ReturnValue"] == 0
    output = await amt.invoke("CIM_KVMRedirectionSAP", "RequestStateChange", {"RequestedState": 2})
    assert output["ReturnValue"] == 0
    optin = await amt.get("IPS_OptInService")
    optin["OptInRequired"] = 0
    await amt.put(optin)


@dataclass
class CiraEnv:
    engine: Engine
    server: EngineServer
    machine: SimMachine
    password: str
    client: cira.CiraClient

    @property
    def system_uuid(self) -> str:
        return self.engine.uuid

    def direct(self) -> WsmanTransport:
        """WS-MAN straight to the engine's HTTP listener (configuration steps that are not under test)."""
        return WsmanTransport("127.0.0.1", "admin", self.password, port=self.server.bound_port("127.0.0.1"))


def mps_options(mps: LoopbackMps, *, password: str = MPS_PASSWORD) -> cira.CiraOptions:
    return cira.CiraOptions.parse(f"127.0.0.1:{mps.port}", MPS_USER, password, ca_file=mps.cert_file)


@asynccontextmanager
async def cira_engine(tls_dir: Path, override: cira.CiraOptions | None, *, tuning: cira.CiraTuning = FAST,
                      domain: str = "", password: str | None = None, machine: SimMachine | None = None,
                      ) -> AsyncIterator[CiraEnv]:
    """One engine on 127.0.0.1 (HTTP, TLS, redirection, redirection over TLS and VNC, all ephemeral) whose CIRA
    client is attached as the launcher attaches it."""
    password = password or "Aa1!" + secrets.token_urlsafe(12)
    db = Database(":memory:")
    machine = machine or SimMachine(power_state=PowerState.ON, console=SimConsole(timing=ConsoleTiming.instant()))
    config = EngineConfig(services=(*all_services(), cira.service), admin_password=password, hostname="cira-sim",
                          domain=domain)
    engine = Engine(config, machine, StateStore(db, config.engine_id))
    cert, key = tls_dir / "engine-cert.pem", tls_dir / "engine-key.pem"
    generate_self_signed(cert, key, "outband-test", hosts=["127.0.0.1", "localhost"])
    server = EngineServer({"127.0.0.1": engine}, Ports(0, 0, 0, 0, vnc=0), server_context(cert, key))
    await server.start()
    try:
        [client] = cira.attach(server, override, tuning)
        yield CiraEnv(engine, server, machine, password, client)
    finally:
        await server.stop()
        await client.aclose()
        db.close()


async def configure_cira(env: CiraEnv, *, root_der: bytes, host: str, port: int, username: str, password: str,
                         common_name: str) -> None:
    """Configure CIRA over WS-MAN as RPS does (``ciraConfiguration.ts``): the MPS root, the server, a periodic
    policy (every 25 s, tunnel kept), and environment detection that puts the device outside the intranet."""
    async with env.direct() as transport:
        amt = AmtClient("127.0.0.1", transport=transport)
        added = await amt.invoke("AMT_PublicKeyManagementService", "AddTrustedRootCertificate",
                                 {"CertificateBlob": root_der})
        assert added["ReturnValue"] == 0
        server = await amt.invoke("AMT_RemoteAccessService", "AddMpServer", {
            "AccessInfo": host, "InfoFormat": 3, "Port": port, "AuthMethod": 2, "Username": username,
            "Password": password, "CN": common_name})
        assert server["ReturnValue"] == 0
        mps = EndpointReference.to(resource_uri("AMT_ManagementPresenceRemoteSAP"),
                                   {"Name": "Intel(r) AMT:Management Presence Server 0"})
        rule = await amt.invoke("AMT_RemoteAccessService", "AddRemoteAccessPolicyRule", {
            "Trigger": 2, "TunnelLifeTime": 0, "ExtendedData": PERIODIC_25S, "MpServer": mps})
        assert rule["ReturnValue"] == 0
        settings = await amt.get("AMT_EnvironmentDetectionSettingData")
        settings["DetectionStrings"] = ["f81d4fae-7dec-11d0-a765-00a0c91e6bf6.com"]
        await amt.put(settings)
