"""An engine with a redirection listener of the test's choosing (TLS, the standard ports, its timings), IDE-R and
KVM switched on and no consent needed, for the IDE-R/KVM tests, the MeshCentral KVM peer test and the bench."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.redir._kit import RedirEnv, instant_machine, redirection_engine

from outband.client.amt import AmtClient
from outband.engine.platforms.sim import SimMachine
from outband.engine.redirection import RedirectionConfig
from outband.testing.engine import RunningEngine

KVM_ENABLED = 2
NO_CONSENT = 0


async def enable_kvm(env: RunningEngine, *, consent: bool = False) -> None:
    """CIM_KVMRedirectionSAP.RequestStateChange(2), and the user-consent policy (none unless ``consent``)."""
    amt = AmtClient(env.host, transport=env.transport())
    output = await amt.invoke("CIM_KVMRedirectionSAP", "RequestStateChange", {"RequestedState": KVM_ENABLED})
    assert output["ReturnValue"] == 0
    if not consent:
        optin = await amt.get("IPS_OptInService")
        optin["OptInRequired"] = NO_CONSENT
        await amt.put(optin)


@asynccontextmanager
async def media_engine(*, machine: SimMachine | None = None, kvm_size: tuple[int, int] | None = None,
                       password: str | None = None, tls_dir: Path | None = None, standard_ports: bool = False,
                       config: RedirectionConfig | None = None) -> AsyncIterator[RedirEnv]:
    machine = machine or instant_machine()
    if kvm_size is not None:
        machine.display.size = kvm_size
    async with redirection_engine(config=config, machine=machine, password=password, tls_dir=tls_dir,
                                  standard_ports=standard_ports) as redir:
        await enable_kvm(redir.env)
        yield redir
