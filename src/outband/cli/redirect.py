"""What ``outband kvm`` and ``outband ider`` share: the redirection options on top of the WS-MAN ones, and the
password asked once for both connections."""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated

import typer

from ..client.redirection import StreamFactory
from ..client.streams import direct_stream
from .wsman import Device, MissingPassword

RedirPortOption = Annotated[int | None, typer.Option(
    "--redir-port", show_default=False, help="Redirection port (default 16994, or 16995 with TLS).")]


def with_password(device: Device) -> Device:
    """The device with its password settled: from -p/AMT_PASSWORD, else asked for on a terminal."""
    if device.password is not None:
        return device
    if not sys.stdin.isatty():
        raise MissingPassword()
    return dataclasses.replace(device, password=typer.prompt(f"Password for {device.user}@{device.host}",
                                                             hide_input=True))


def redirection_stream(device: Device, port: int | None) -> StreamFactory:
    tls = device.tls or device.fingerprint is not None or device.insecure
    return direct_stream(device.host, port, tls=tls, fingerprint=device.fingerprint, verify=not device.insecure,
                         timeout=device.timeout)


__all__ = ["RedirPortOption", "redirection_stream", "with_password"]
