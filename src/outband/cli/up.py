"""``outband up``: the console and a simulated fleet in one process, the fleet already registered.

Theory of operation (one start, every step idempotent so a restart on the same data directory finds the same
fleet and adds nothing twice):

1. open the console's runtime (database migrated, secret key, first admin), as ``outband console`` does;
2. choose the fleet's admin password: ``AMT_PASSWORD`` if given (the stored credentials of registered
   engines follow it), else the one the console already stores (encrypted) as the credentials of a
   registered simulated engine, else a new strong one, shown once.  It is kept nowhere else: each engine
   keeps only its Digest HA1, the console only the Fernet token;
3. start the console's MPS (as ``outband console`` does), then launch N engines (``engine.launcher``, fleet
   mode) on ``--fleet-base`` and the following loopback addresses with the standard ports 16992-16995, their
   state in ``<data dir>/simulated-fleet``;
4. register every engine the console does not know yet (matched by address and port, so renamed devices
   are not added again) as ``sim-001``, ``sim-002``, ... with tags and groups for the filters to show;
5. CIRA (the default): the engines dial the MPS with a login made for this run (or the shared one
   OUTBAND_MPS_USERNAME/PASSWORD give), are matched by their UUID, and the start waits for them to come
   online; ``--direct``: the console reaches them on their addresses instead.  Then check each one (identify,
   authenticate, read its power state) so the device list starts out current;
6. start the job services (runner, schedules, health poller) and serve the console, as ``outband console``
   does; print where and how to sign in, and run until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import resource
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Final, cast

import typer
from pydantic import SecretStr
from sqlalchemy import String, Table, bindparam, func, select, update

from ..console.audit import OK, record_entry
from ..console.config import DEFAULT_LISTEN, Settings
from ..console.db.models import Device, Transport
from ..console.devices.connect import DeviceCheckError, DeviceFacts, DeviceTarget
from ..console.devices.repository import chunks, ensure_group, ensure_tags, new_device, record_state
from ..console.jobs.services import job_services
from ..console.logs import configure_logging, register_secret
from ..console.mps import MpsService, MpsSettings
from ..console.runtime import Runtime, open_runtime
from ..console.schemas import DeviceCreate
from ..console.secrets import SecretKeyError
from ..console.server import ConsoleServer
from ..engine import cira
from ..engine.launcher import Launched, LaunchOptions, check_password, fleet_addresses, generate_password, launch
from .console import (
    ConfigOption,
    DataDirOption,
    ListenOption,
    MpsListenOption,
    announce,
    err,
    mps_settings_from,
    settings_from,
)

DEFAULT_FLEET: Final = 20
DEFAULT_FLEET_BASE: Final = "127.1.0.1"
FLEET_DIR: Final = "simulated-fleet"
FLEET_MPS_USER: Final = "outband-fleet"
ONLINE_WAIT: Final = 30.0
ONLINE_PER_ENGINE: Final = 0.02
"""How long the start waits for the fleet to dial in: a base plus a little per engine (TLS handshakes)."""
STANDARD_PORT: Final = 16992
SOCKETS_PER_ENGINE: Final = 4
"""16992-16995 on every address."""
CHECKS_AT_ONCE: Final = 64
REGISTER_BATCH: Final = 500
TAG: Final = "lab"


@dataclass(frozen=True, slots=True)
class FleetPlan:
    size: int
    base: str = DEFAULT_FLEET_BASE
    password: str | None = field(default=None, repr=False)
    """The engines' admin password to use (else the stored or a generated one)."""
    transport: Transport = Transport.CIRA
    """How the console reaches the engines: they dial its MPS, or it dials their addresses."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one simulated engine sits in the console: name, tags and group."""

    name: str
    tags: list[str]
    group: str


def placement(index: int, size: int) -> Placement:
    """sim-001 .. sim-N; all tagged ``lab``, every fifth a ``kiosk`` (the rest ``desk``), the first half on
    ``floor-1`` and the second on ``floor-2`` -- so tag and group filters select something smaller than all."""
    kind = "kiosk" if index % 5 == 4 else "desk"
    return Placement(f"sim-{index + 1:03d}", [TAG, kind], "floor-1" if index < (size + 1) // 2 else "floor-2")


@dataclass(slots=True)
class FleetReport:
    addresses: list[str]
    generated_password: str | None = field(default=None, repr=False)
    """The engines' admin password when this start made it (shown once)."""
    added: int = 0
    known: int = 0
    reachable: int = 0
    online: int | None = None
    """CIRA: how many engines had dialled in when the start stopped waiting."""
    skipped: list[str] = field(default_factory=list)
    """Names taken by devices at other addresses (those engines stay unregistered)."""


@dataclass(slots=True)
class Running:
    runtime: Runtime
    server: ConsoleServer
    fleet: Launched | None
    report: FleetReport


def check_descriptors(size: int) -> None:
    """Fail early and clearly when the process cannot hold the fleet's listening sockets."""
    wanted = size * SOCKETS_PER_ENGINE + 1024
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        raise ValueError(f"{size} engines need about {wanted} file descriptors and this process may open "
                         f"{hard} (ulimit -Hn); simulate fewer or raise the limit")


@dataclass(frozen=True, slots=True)
class FleetPassword:
    value: str = field(repr=False)
    generated: bool
    """New on this start (shown once)."""


async def fleet_password(runtime: Runtime, addresses: Sequence[str], wanted: str | None) -> FleetPassword:
    """The fleet's admin password (see step 2 of the module docstring); a ``wanted`` one that differs from the
    stored one replaces it in the credentials of the registered engines."""
    stored = None
    async with runtime.db.read() as session:
        for part in chunks(addresses):
            token = (await session.execute(
                select(Device.password_enc).where(Device.host.in_(part), Device.http_port == STANDARD_PORT)
                .order_by(Device.id).limit(1))).scalar_one_or_none()
            if token is not None:
                stored = runtime.box.decrypt(token)
                break
    if wanted is None:
        return FleetPassword(stored, False) if stored is not None else FleetPassword(generate_password(), True)
    check_password(wanted)
    if stored is not None and stored != wanted:
        async with runtime.db.write() as session:
            for part in chunks(addresses):
                await session.execute(update(Device).where(Device.host.in_(part), Device.http_port == STANDARD_PORT)
                                      .values(password_enc=runtime.box.encrypt(wanted)))
    return FleetPassword(wanted, False)


async def register_fleet(runtime: Runtime, addresses: Sequence[str], password: str, fingerprint: str | None, *,
                         transport: Transport = Transport.DIRECT, uuids: Sequence[str] | None = None
                         ) -> tuple[FleetReport, list[int]]:
    """Add the engines the console does not know yet, and give every fleet device ``transport`` (and its
    engine's UUID, which CIRA matches); return the report and the ids of every fleet device."""
    uuid_of = {a: uuid.UUID(u) for a, u in zip(addresses, uuids, strict=True)} if uuids is not None else {}
    report = FleetReport(list(addresses))
    by_host: dict[str, int] = {}
    async with runtime.db.read() as session:
        rows = await session.execute(select(Device.host, Device.id, Device.name)
                                     .where(Device.http_port == STANDARD_PORT))
        names = set()
        wanted = set(addresses)
        for host, device_id, name in rows:
            names.add(name)
            if host in wanted:
                by_host.setdefault(host, device_id)
    report.known = len(by_host)
    pending: list[tuple[str, Placement]] = []
    for index, address in enumerate(addresses):
        if address in by_host:
            continue
        spot = placement(index, len(addresses))
        if spot.name in names:
            report.skipped.append(spot.name)
        else:
            pending.append((address, spot))
    added: list[int] = []
    for start in range(0, len(pending), REGISTER_BATCH):
        async with runtime.db.write() as session:
            devices = []
            for address, spot in pending[start:start + REGISTER_BATCH]:
                spec = DeviceCreate(name=spot.name, host=address, password=password, fingerprint=fingerprint,
                                    transport=transport, uuid=uuid_of.get(address), tags=spot.tags,
                                    group=spot.group)
                device = new_device(spec, runtime.box, await ensure_tags(session, spot.tags),
                                    await ensure_group(session, spot.group))
                session.add(device)
                devices.append(device)
            await session.flush()
            added += [device.id for device in devices]
    report.added = len(added)
    if by_host:
        async with runtime.db.write() as session:
            await session.execute(_FLEET_ROUTE, [{"b_id": device_id, "b_transport": transport,
                                                  "b_uuid": str(uuid_of[host]) if host in uuid_of else None}
                                                 for host, device_id in by_host.items()])
    if added:
        await record_entry(runtime.db, action="up.register_fleet", outcome=OK, via="system", devices=added,
                           detail={"added": len(added), "first": addresses[0], "engines": len(addresses)})
    return report, sorted([*by_host.values(), *added])


_DEVICES = cast(Table, Device.__table__)
_FLEET_ROUTE = (update(_DEVICES).where(_DEVICES.c.id == bindparam("b_id"))
                .values(transport=bindparam("b_transport", type_=_DEVICES.c.transport.type),
                        uuid=func.coalesce(bindparam("b_uuid", type_=String), _DEVICES.c.uuid)))
"""Every known fleet device gets this start's transport (and its engine's UUID), in one executemany."""


async def await_dialled(mps: MpsService, device_ids: Sequence[int], seconds: float) -> int:
    """Wait (at most ``seconds``) until every fleet device has dialled in and its presence is stored (what the
    device list shows); returns how many have dialled in."""
    wanted = set(device_ids)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await mps.registry.wait_until(lambda registry: all(d in registry for d in wanted))
            await mps.presence.flushed()
    return sum(1 for d in wanted if d in mps.registry)


def fleet_mps_settings(given: MpsSettings) -> MpsSettings:
    """The MPS settings with a shared login the fleet can use: the given one, else one made for this run."""
    if given.shared_login is not None:
        return given
    password = "Fleet!" + secrets.token_urlsafe(12)
    register_secret(password)
    return given.model_copy(update={"mps_username": FLEET_MPS_USER, "mps_password": SecretStr(password)})


async def refresh_states(runtime: Runtime, device_ids: Sequence[int], password: str) -> int:
    """Check every fleet device as adding one does, and store what it said; returns how many answered."""
    async with runtime.db.read() as session:
        devices = (await session.execute(select(Device).where(Device.id.in_(list(device_ids))))).scalars().all()
        targets = [DeviceTarget.of(device, password) for device in devices]
    gate = asyncio.Semaphore(CHECKS_AT_ONCE)
    outcomes: list[tuple[int, DeviceFacts | str]] = []

    async def check(target: DeviceTarget) -> None:
        assert target.device_id is not None
        async with gate:
            try:
                outcomes.append((target.device_id, await runtime.connector.check(target)))
            except DeviceCheckError as exc:
                outcomes.append((target.device_id, exc.message))

    async with asyncio.TaskGroup() as group:
        for target in targets:
            group.create_task(check(target))
    async with runtime.db.write() as session:
        for device_id, outcome in outcomes:
            if isinstance(outcome, str):
                await record_state(session, device_id, reachable=False, error=outcome)
            else:
                await record_state(session, device_id, reachable=True, power_state=outcome.power_state,
                                   amt_version=outcome.amt_version, provisioning_mode=outcome.provisioning_mode,
                                   uuid=outcome.uuid)
    return sum(1 for _, outcome in outcomes if not isinstance(outcome, str))


@contextlib.asynccontextmanager
async def console_with_fleet(settings: Settings, plan: FleetPlan, mps_settings: MpsSettings | None = None
                             ) -> AsyncIterator[Running]:
    """The console serving, with ``plan.size`` engines launched and registered.  On exit the console stops
    first (its jobs settle while the engines still answer), then the engines."""
    addresses = fleet_addresses(plan.base, plan.size) if plan.size else []
    if plan.size:
        check_descriptors(plan.size)
    mps_settings = mps_settings or MpsSettings()
    if plan.transport is Transport.CIRA and plan.size:
        if not mps_settings.enabled:
            raise ValueError("a CIRA fleet needs the MPS: drop --mps-listen off, or run the fleet with --direct")
        mps_settings = fleet_mps_settings(mps_settings)
    fleet: Launched | None = None
    runtime = await open_runtime(settings)
    try:
        report = FleetReport(addresses)
        mps = MpsService(mps_settings) if mps_settings.enabled else None
        if mps is not None:
            await runtime.start_service(mps)
        if plan.size:
            password = await fleet_password(runtime, addresses, plan.password)
            register_secret(password.value)
            fleet = await launch(LaunchOptions(fleet=plan.size, fleet_base=plan.base, admin_password=password.value,
                                               state_dir=settings.data_dir / FLEET_DIR))
            uuids = [fleet.engines[address].uuid for address in addresses]
            report, device_ids = await register_fleet(runtime, addresses, password.value, fleet.tls_fingerprint,
                                                      transport=plan.transport, uuids=uuids)
            if plan.transport is Transport.CIRA and mps is not None:
                dial_back(fleet, mps)
                report.online = await await_dialled(mps, device_ids, ONLINE_WAIT + ONLINE_PER_ENGINE * plan.size)
            report.generated_password = password.value if password.generated else None
            report.reachable = await refresh_states(runtime, device_ids, password.value)
        for service in job_services():
            await runtime.start_service(service)
        host, port = settings.listen_address
        server = ConsoleServer(runtime, host, port)
        await server.start()
        try:
            yield Running(runtime, server, fleet, report)
        finally:
            await server.stop()
    finally:
        await runtime.close()
        if fleet is not None:
            await fleet.server.stop()
            fleet.database.close()


def dial_back(fleet: Launched, mps: MpsService) -> None:
    """Every engine keeps a CIRA tunnel to the console's MPS (registered first, so no dial is refused)."""
    login = mps.settings.shared_login
    assert login is not None
    assert mps.cert_file is not None
    host = mps.host
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:  # listening everywhere: loopback (in its certificate) too
            host = "127.0.0.1"
    options = cira.CiraOptions.parse(f"[{host}]:{mps.port}" if ":" in host else f"{host}:{mps.port}", *login,
                                     ca_file=mps.cert_file)
    cira.attach(fleet.server, options)


def describe(running: Running, settings: Settings) -> list[str]:
    """What ``outband up`` prints after the console's own lines: the fleet, how to sign in, what to try."""
    lines: list[str] = []
    report = running.report
    if report.addresses:
        first, last = report.addresses[0], report.addresses[-1]
        size = len(report.addresses)
        lines.append(f"  simulated fleet: {size} engine(s) on {first} .. {last} (WS-MAN port 16992, TLS 16993, "
                     f"redirection 16994/16995), state in {settings.data_dir / FLEET_DIR}")
        lines.append(f"  registered as {placement(0, size).name} .. {placement(size - 1, size).name} "
                     f"({report.added} added now, {report.known} known), tags {TAG}/desk/kiosk, groups "
                     f"floor-1/floor-2; {report.reachable} answered the check")
        mps = running.runtime.service(MpsService.name)
        if report.online is not None and isinstance(mps, MpsService):
            lines.append(f"  over CIRA: the engines dial the console's MPS ({mps.host}:{mps.port}); {report.online} "
                         f"of {size} online (--direct: the console dials them instead)")
        if report.generated_password is not None:
            lines.append(f"  [bold]the engines' admin password (shown once; for AMT tools):[/bold] "
                         f"{report.generated_password}")
            lines.append("  (set AMT_PASSWORD to choose it; the console keeps it as the devices' credentials)")
        if report.skipped:
            lines.append(f"  [yellow]not registered (name taken by another device):[/yellow] "
                         f"{', '.join(report.skipped[:10])}{' ...' if len(report.skipped) > 10 else ''}")
    if running.runtime.generated_admin_password is None:
        source = ("OUTBAND_ADMIN_PASSWORD" if settings.admin_password is not None
                  else "the password shown on the first start")
        lines.append(f"  sign in as admin with {source}")
    url = running.server.url
    prefix = "" if url == f"http://{DEFAULT_LISTEN}" else f"export OUTBAND_URL={url}; "
    lines.append(f"  try: {prefix}outband fleet login && outband fleet power status --all")
    return lines


async def _serve(settings: Settings, plan: FleetPlan, mps: MpsSettings) -> None:
    async with console_with_fleet(settings, plan, mps) as running:
        running.server.stop_on_signals()
        announce(running.runtime, running.server.url)
        for line in describe(running, settings):
            err.print(line)
        await running.server.wait()


def up_command(
    simulate: Annotated[int, typer.Option(
        "--simulate", min=0, max=100_000, help="How many simulated engines to run and register (0: none).")
    ] = DEFAULT_FLEET,
    listen: ListenOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    fleet_base: Annotated[str, typer.Option(
        "--fleet-base", help="Loopback address of the first engine; the others follow it.")] = DEFAULT_FLEET_BASE,
    amt_password: Annotated[str | None, typer.Option(
        "--amt-password", envvar="AMT_PASSWORD", show_default=False,
        help="The engines' admin password (or AMT_PASSWORD); default: the stored one, else generated and shown "
        "once.")] = None,
    direct: Annotated[bool, typer.Option(
        "--direct", help="The console dials the engines' addresses instead of the engines dialling its MPS "
        "(CIRA).")] = False,
    mps_listen: MpsListenOption = None,
) -> None:
    """Start the console with a simulated fleet already registered: the one-command demo.

    Prints the console's URL, the admin sign-in (OUTBAND_ADMIN_PASSWORD, else a one-time password on the first
    start) and a CLI command to try.  Run it again on the same --data-dir to get the same console and fleet.
    """
    settings = settings_from(listen, None, data_dir, config)
    mps = mps_settings_from(mps_listen)
    configure_logging(settings.log_format, settings.log_level)
    plan = FleetPlan(simulate, fleet_base, amt_password, Transport.DIRECT if direct else Transport.CIRA)
    try:
        fleet_addresses(fleet_base, max(simulate, 1))
        asyncio.run(_serve(settings, plan, mps))
    except (OSError, SecretKeyError, ValueError, RuntimeError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass

