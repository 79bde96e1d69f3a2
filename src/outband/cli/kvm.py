"""``outband kvm HOST``: a device's screen as a PNG (``--screenshot``), or as a local VNC server any viewer
can open (``--vnc 127.0.0.1:5901``), over AMT's KVM redirection (16994/16995)."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from ..client.kvm import KvmChannel, KvmSession, VncBridge, open_kvm_channel
from .cimtext import CliValueError
from .redirect import RedirPortOption, redirection_stream, with_password
from .wsman import Device, device_command

EXAMPLES = """Examples:

  export AMT_PASSWORD='...'
  outband kvm 10.0.0.5 --screenshot screen.png
  outband kvm 10.0.0.5 --vnc 127.0.0.1:5901     (then: vncviewer 127.0.0.1::5901)

KVM must be enabled on the device (CIM_KVMRedirectionSAP) and, where the
consent policy asks, the user's consent code entered first."""


def _address(value: str) -> tuple[str, int]:
    """The --vnc address: loopback only, because the bridge asks a viewer for no password (AMT's KVM channel
    offers RFB security None: the redirection login already happened)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise CliValueError(f"--vnc wants ADDRESS:PORT, not {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise CliValueError(f"--vnc listens on a loopback address only (the viewer is not asked for a password), "
                            f"not {host!r}")
    return host, int(port)


@device_command
async def kvm(
    device: Device,
    screenshot: Annotated[Path | None, typer.Option(
        "--screenshot", metavar="FILE", help="Write the screen to FILE as PNG and exit.")] = None,
    vnc: Annotated[str | None, typer.Option(
        "--vnc", metavar="ADDRESS:PORT", help="Serve the screen as a VNC server until interrupted.")] = None,
    redir_port: RedirPortOption = None,
) -> None:
    """Look at and type on a device's screen (KVM)."""
    if screenshot is None and vnc is None:
        raise CliValueError("say what to do: --screenshot FILE or --vnc ADDRESS:PORT")
    listen = _address(vnc) if vnc is not None else None
    device = with_password(device)
    password = device.password or ""
    streams = redirection_stream(device, redir_port)
    if screenshot is not None:
        async with KvmSession(device.host, device.user, password, stream_factory=streams,
                              timeout=device.timeout) as session:
            screenshot.write_bytes(session.screenshot())
            size = f"{session.framebuffer.width}x{session.framebuffer.height}"
            typer.echo(f"{screenshot}: the {size} screen of {device.host}")
    if listen is not None:
        async def channel() -> KvmChannel:
            return await open_kvm_channel(streams, device.user, password, host=device.host,
                                          login_timeout=device.timeout)

        bridge = VncBridge(channel)
        server = await asyncio.start_server(bridge.serve, *listen)
        typer.echo(f"VNC server for {device.host} on {listen[0]}:{listen[1]} (Ctrl-C stops it)")
        async with server:
            await server.serve_forever()

__all__ = ["EXAMPLES", "kvm"]
