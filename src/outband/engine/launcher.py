"""Building and running engines from command-line settings: one engine, or a fleet in one process.

Start-up policy, all of it security-relevant:
* the admin password comes from the caller (``--admin-password`` / ``AMT_PASSWORD``); with neither, a stored
  admin account is kept, and a first start generates a strong password and shows it once;
* the Digest realm is made on first start and kept (it salts every stored HA1);
* TLS uses the given certificate, else one generated on first start and kept in the state directory.
"""

from __future__ import annotations

import ipaddress
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..aio.tls import fingerprint_of, generate_self_signed, server_context
from .cira import CiraOptions
from .cira import attach as attach_cira
from .cira import service as cira_service
from .core import DEFAULT_AMT_VERSION, Engine, EngineConfig, all_services
from .platforms.base import Platform
from .platforms.profile import HardwareProfile
from .platforms.sim import SimMachine
from .server import EngineServer, Ports
from .state import Database, StateStore

MIN_PASSWORD_LENGTH = 8


@dataclass(slots=True)
class LaunchOptions:
    host: str = "127.0.0.1"
    http_port: int = 16992
    tls_port: int | None = 16993
    redirection_port: int | None = 16994
    redirection_tls_port: int | None = 16995
    vnc_port: int | None = None
    """KVM for VNC viewers (5900 for ``outband engine``); it answers only once a console switches it on."""
    state_dir: Path = Path("outband-engine")
    admin_password: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    amt_version: str = DEFAULT_AMT_VERSION
    profile: Path | None = None
    fleet: int = 0
    fleet_base: str = "127.1.0.1"
    hostname: str | None = None
    cira: CiraOptions | None = None
    """An MPS to keep a CIRA tunnel to (else the one configured over WS-MAN, if any)."""
    vm: Path | None = None
    """A VM file (VM.toml): the engine runs and manages that QEMU VM instead of a simulated PC."""
    qmp: Path | None = None
    """The QMP socket of a QEMU someone else runs, to manage instead (with ``vm`` describing it, or alone)."""


@dataclass(slots=True)
class Launched:
    server: EngineServer
    engines: dict[str, Engine]
    database: Database
    generated_password: str | None = None
    tls_fingerprint: str | None = None
    addresses: list[str] = field(default_factory=list)


def check_password(password: str) -> None:
    """AMT's rule for admin passwords: 8-32 characters with upper, lower, digit and a special character."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= 32:
        raise ValueError("the admin password must be 8 to 32 characters long")
    classes = [any(c.islower() for c in password), any(c.isupper() for c in password),
               any(c.isdigit() for c in password), any(not c.isalnum() for c in password)]
    if not all(classes):
        raise ValueError("the admin password needs an upper-case letter, a lower-case letter, a digit and a "
                         "special character (AMT's strong password rule)")
    if any(c in password for c in ':",'):
        raise ValueError('the admin password must not contain : , or "')


def generate_password(length: int = 16) -> str:
    """A strong password that satisfies :func:`check_password`."""
    alphabet = string.ascii_letters + string.digits + "!#$%&()*+-./;<=>?@[]^_{|}~"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        try:
            check_password(candidate)
        except ValueError:
            continue
        return candidate


def fleet_addresses(base: str, count: int) -> list[str]:
    start = ipaddress.ip_address(base)
    addresses = [str(start + i) for i in range(count)]
    last = ipaddress.ip_address(addresses[-1])
    if not (start.is_loopback and last.is_loopback):
        raise ValueError(f"fleet addresses {base}..{last} must stay on the loopback network (127.0.0.0/8)")
    return addresses


async def launch(opts: LaunchOptions, *, machine_factory: Callable[[HardwareProfile], Platform] | None = None
                 ) -> Launched:
    """Build the engines the options describe and start listening."""
    if opts.admin_password is not None:
        check_password(opts.admin_password)
    profile = HardwareProfile.load(opts.profile) if opts.profile else HardwareProfile()
    make_machine: Callable[[HardwareProfile], Platform] = machine_factory or (lambda p: SimMachine(p))
    default_hostname = "outband-sim"
    vm_machine = None
    if opts.vm is not None or opts.qmp is not None:
        from .platforms.qemu import QemuMachine  # here: engines of simulated PCs need no QEMU client

        if opts.fleet:
            raise ValueError("a fleet runs simulated PCs; a VM (--vm, --qmp) is managed by one engine")
        vm_machine = QemuMachine.from_files(opts.vm, opts.qmp)
        make_machine, default_hostname = (lambda _profile: vm_machine), vm_machine.spec.name
    state_dir = opts.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    database = Database(state_dir / ("fleet.db" if opts.fleet else "engine.db"))

    addresses = fleet_addresses(opts.fleet_base, opts.fleet) if opts.fleet else [opts.host]
    generated: str | None = None
    engines: dict[str, Engine] = {}
    services = (*all_services(), cira_service)
    with database.transaction():  # one commit for the whole fleet's first-start writes (realm, admin)
        for index, address in enumerate(addresses):
            engine_id = f"engine-{index}" if opts.fleet else "engine"
            store = StateStore(database, engine_id)
            password = opts.admin_password
            if password is None and store.get("acl/0") is None:
                generated = generated or generate_password()
                password = generated
            config = EngineConfig(
                engine_id=engine_id,
                amt_version=opts.amt_version,
                hostname=opts.hostname or (f"outband-sim-{index}" if opts.fleet else default_hostname),
                admin_password=password,
                services=services,
            )
            machine_profile = profile.instantiate(index) if opts.fleet else profile
            engines[address] = Engine(config, make_machine(machine_profile), store)

    tls_context = None
    fingerprint = None
    if opts.tls_port is not None or opts.redirection_tls_port is not None:
        cert = opts.tls_cert or state_dir / "tls" / "cert.pem"
        key = opts.tls_key or state_dir / "tls" / "key.pem"
        if opts.tls_cert is None and not cert.exists():
            generate_self_signed(cert, key, "outband-engine", hosts=[opts.host, "localhost"])
        tls_context = server_context(cert, key)
        fingerprint = fingerprint_of(cert)
    ports = Ports(opts.http_port, opts.tls_port, opts.redirection_port, opts.redirection_tls_port, opts.vnc_port)
    server = EngineServer(engines, ports, tls_context)
    try:
        await server.start()
    except BaseException:
        await server.stop()
        database.close()
        raise
    attach_cira(server, opts.cira)
    return Launched(server, engines, database, generated, fingerprint, addresses)
