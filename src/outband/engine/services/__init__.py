"""AMT services, one module per area; each exports ``service``, a :class:`~outband.engine.registry.Service`."""

from __future__ import annotations

from ..registry import Service
from . import (
    alarms,
    associations,
    authorization,
    boot,
    certificates,
    general,
    inventory,
    kerberos,
    logs,
    network,
    network_extra,
    optin,
    power,
    provisioning,
    provisioning_hashes,
    redirection,
    remoteaccess,
    screen,
    timesync,
    watchdog,
    wireless,
)

SERVICES: tuple[Service, ...] = tuple(
    module.service
    for module in (
        general, power, boot, alarms, timesync, inventory, network, logs, authorization, optin, redirection,
        watchdog, provisioning, certificates, remoteaccess, kerberos, screen,
        network_extra, wireless, associations, provisioning_hashes,
    )
)
