"""``outband engine``: run an AMT-compatible management engine (or a fleet of them) on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..engine.cira import CiraOptions
from ..engine.core import DEFAULT_AMT_VERSION
from ..engine.launcher import LaunchOptions, launch


def engine_command(
    platform: Annotated[str, typer.Option(help="What the engine manages: sim (a simulated PC) or qemu (a QEMU VM: "
                                          "--vm or --qmp).")] = "sim",
    vm: Annotated[Path | None, typer.Option(help="qemu: the VM file (VM.toml) of the VM the engine runs.")] = None,
    qmp: Annotated[Path | None, typer.Option(help="qemu: the QMP socket of a running QEMU to manage instead "
                                             "(started with -S: power-on resumes it).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (single engine).")] = "127.0.0.1",
    http_port: Annotated[int, typer.Option(help="WS-MAN over HTTP.")] = 16992,
    tls_port: Annotated[int, typer.Option(help="WS-MAN over TLS; 0 disables TLS.")] = 16993,
    redir_port: Annotated[int, typer.Option(help="Redirection (SOL, IDE-R, KVM) over TCP; 0 disables it.")] = 16994,
    redir_tls_port: Annotated[int, typer.Option(help="Redirection over TLS; 0 disables it.")] = 16995,
    vnc_port: Annotated[int, typer.Option(help="KVM for VNC viewers (plain RFB, VNC password, no TLS), as AMT "
                                          "serves it; it answers only after a console sets an RFB password "
                                          "and enables it (IPS_KVMRedirectionSettingData). 0 disables it.")
                        ] = 5900,
    state_dir: Annotated[Path, typer.Option(help="Where settings, logs, accounts and the TLS key live.")] = Path(
        "outband-engine"
    ),
    admin_password: Annotated[
        str | None,
        typer.Option(envvar="AMT_PASSWORD", help="Admin password (or AMT_PASSWORD). Without it, a stored one is "
                     "kept, or a strong one is generated and printed once."),
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate for TLS (default: generated).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for --tls-cert.")] = None,
    amt_version: Annotated[str, typer.Option(help="Firmware version to report (x.y.z.build).")] = DEFAULT_AMT_VERSION,
    profile: Annotated[Path | None, typer.Option(help="Hardware profile (TOML or JSON).")] = None,
    fleet: Annotated[int, typer.Option(help="Run N engines, each on its own loopback address.")] = 0,
    fleet_base: Annotated[str, typer.Option(help="First address of the fleet.")] = "127.1.0.1",
    cira: Annotated[str | None, typer.Option(help="Keep a CIRA tunnel to this MPS (HOST[:PORT], port 4433 by "
                                             "default) instead of the one configured over WS-MAN.")] = None,
    cira_user: Annotated[str | None, typer.Option(help="CIRA user name the MPS knows the engine by.")] = None,
    cira_password: Annotated[str | None, typer.Option(envvar="CIRA_PASSWORD",
                                                      help="CIRA password (or CIRA_PASSWORD).")] = None,
    cira_ca: Annotated[Path | None, typer.Option(help="PEM root the MPS certificate must chain to "
                                                 "(default: the system's CAs).")] = None,
    cira_insecure: Annotated[bool, typer.Option(help="Do not verify the MPS certificate (tests only).")] = False,
) -> None:
    """Run an AMT-compatible management engine: WS-MAN on 16992/16993 with HTTP Digest, like Intel AMT.

    Examples: `outband engine` (one simulated PC on 127.0.0.1);
    `AMT_PASSWORD='Sup3r!pass' outband engine --state-dir /var/lib/outband`;
    `outband engine --fleet 100` (100 PCs on 127.1.0.1 .. 127.1.0.100).

    Manage it like any Intel AMT device (user admin): `outband wsman get 127.0.0.1 AMT_GeneralSettings`,
    amtctrl, wsl, MeshCommander.  KVM is on the redirection port and, once a console has set an RFB password,
    enabled port 5900 and KVM, on --vnc-port for any VNC viewer.
    """
    console = Console(stderr=True)
    if platform not in ("sim", "qemu"):
        console.print(f"[red]error:[/red] platform {platform!r} is not available (choose: sim, qemu)")
        raise typer.Exit(2)
    if (platform == "qemu") != (vm is not None or qmp is not None):
        console.print("[red]error:[/red] --platform qemu needs --vm VM.toml or --qmp SOCKET, and only it takes them")
        raise typer.Exit(2)
    if (tls_cert is None) != (tls_key is None):
        console.print("[red]error:[/red] --tls-cert and --tls-key go together")
        raise typer.Exit(2)
    try:
        cira_options = (CiraOptions.parse(cira, cira_user, cira_password, ca_file=cira_ca, insecure=cira_insecure)
                        if cira else None)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    opts = LaunchOptions(
        host=host, http_port=http_port, tls_port=tls_port or None, redirection_port=redir_port or None,
        redirection_tls_port=redir_tls_port or None, vnc_port=vnc_port or None, state_dir=state_dir,
        admin_password=admin_password, tls_cert=tls_cert, tls_key=tls_key, amt_version=amt_version,
        profile=profile, fleet=fleet, fleet_base=fleet_base, cira=cira_options, vm=vm, qmp=qmp,
    )
    try:
        asyncio.run(_serve(opts, console))
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


async def _serve(opts: LaunchOptions, console: Console) -> None:
    launched = await launch(opts)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    first, last = launched.addresses[0], launched.addresses[-1]
    where = first if len(launched.addresses) == 1 else f"{first} .. {last} ({len(launched.addresses)} engines)"
    console.print(f"outband engine: {where}, WS-MAN http://{first}:{opts.http_port}/wsman"
                  + (f", TLS port {opts.tls_port}" if opts.tls_port else "")
                  + (f", redirection {opts.redirection_port}" if opts.redirection_port else "")
                  + (f" and {opts.redirection_tls_port} (TLS)" if opts.redirection_tls_port else "")
                  + (f", VNC {opts.vnc_port} (off until enabled over WS-MAN)" if opts.vnc_port else ""))
    if opts.cira is not None:
        console.print(f"  CIRA: keeping a tunnel to {opts.cira.host}:{opts.cira.port} as {opts.cira.username}")
    if launched.tls_fingerprint:
        console.print(f"  TLS certificate SHA-256: {launched.tls_fingerprint}")
    engine = next(iter(launched.engines.values()))
    console.print(f"  Digest realm: {engine.realm}   state: {opts.state_dir.resolve()}")
    if launched.generated_password is not None:
        console.print("  [bold]admin password (shown once, keep it):[/bold] " + launched.generated_password)
        console.print("  (set AMT_PASSWORD or --admin-password to choose it yourself)")
    try:
        await stop.wait()
    finally:
        console.print("outband engine: stopping")
        await launched.server.stop()
        launched.database.close()
