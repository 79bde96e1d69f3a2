"""``outband wsman``: a WS-Management explorer for AMT devices (and our engine), like wsmancli but typed.

Every device command takes ``HOST`` first and the same connection options; :func:`device_command` adds them
to each command's signature once, so the commands below declare only what is theirs.  Commands are coroutines
run by :func:`run`, which turns every expected failure (refused connection, wrong password, SOAP fault, bad
input) into one line on stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..aio.errors import TransportError
from ..client import AmtClient
from ..proto.cim.catalog import lookup
from ..proto.cim.model import CimObject, epr_to_json
from ..proto.wsman import (
    DecodeError,
    EndpointReference,
    EnumerateResponse,
    IdentifyResponse,
    ObjectAndEPR,
    PullResponse,
    ResourceCreated,
    WsmanFault,
    parse_envelope,
)
from ..proto.wsman.envelope import Body, Item
from ..proto.wsman.namespaces import ENUMERATE_EPR, ENUMERATE_OBJECT_AND_EPR
from ..proto.wsman.xml import MAX_ENVELOPE_BYTES
from .cimtext import (
    CliValueError,
    assign,
    class_uri,
    format_epr,
    format_value,
    format_values,
    parse_assignments,
    parse_selectors,
)

EXAMPLES = """Examples:

  export AMT_PASSWORD='...'
  outband wsman identify 10.0.0.5
  outband wsman get 10.0.0.5 AMT_GeneralSettings
  outband wsman get 10.0.0.5 CIM_SoftwareIdentity -s InstanceID=AMT --json
  outband wsman enumerate 10.0.0.5 CIM_ServiceAvailableToElement
  outband wsman put 10.0.0.5 AMT_GeneralSettings HostName=lab-7
  outband wsman invoke 10.0.0.5 CIM_PowerManagementService \\
      RequestPowerStateChange PowerState=on \\
      'ManagedElement=CIM_ComputerSystem?Name=ManagedSystem'
  outband wsman decode --json capture.xml

Values are typed through the class catalog: numbers may be given by
their meaning (PowerState=on), references as Class?Key=Value&Key2=Value2.
The password comes from -p or AMT_PASSWORD, or is asked for on a
terminal; there is no default password."""

app = typer.Typer(
    name="wsman",
    help="Explore a device's WS-Management classes: identify, get, enumerate, put, invoke, decode captures.",
    epilog=EXAMPLES,
    no_args_is_help=True,
)


# ---------------------------------------------------------------------------------------------- connection


class MissingPassword(Exception):
    """Neither -p nor AMT_PASSWORD, and no terminal to ask on."""


@dataclass(frozen=True, slots=True)
class Device:
    """Where and how to reach a device, as the command line said."""

    host: str
    user: str
    password: str | None
    port: int | None
    tls: bool
    fingerprint: str | None
    insecure: bool
    timeout: float
    json: bool

    def client(self, *, authenticate: bool = True) -> AmtClient:
        password = self.password
        if authenticate and password is None:
            if not sys.stdin.isatty():
                raise MissingPassword()
            password = typer.prompt(f"Password for {self.user}@{self.host}", hide_input=True)
        try:
            return AmtClient(
                self.host, self.user, password, port=self.port,
                tls=self.tls or self.fingerprint is not None or self.insecure,
                fingerprint=self.fingerprint, verify=not self.insecure, timeout=self.timeout,
            )
        except ValueError as exc:  # an unreadable fingerprint
            raise CliValueError(str(exc)) from None


_DEVICE_PARAMETERS = (
    ("host", str, inspect.Parameter.empty, typer.Argument(
        metavar="HOST", show_default=False, help="Device address (name, IPv4 or IPv6).")),
    ("user", str, "admin", typer.Option("-u", "--user", help="Digest user name.")),
    ("password", str | None, None, typer.Option(
        "-p", "--password", envvar="AMT_PASSWORD", show_default=False,
        help="Digest password (prefer the AMT_PASSWORD variable: command lines are visible to other users).")),
    ("port", int | None, None, typer.Option(
        "--port", show_default=False, help="Port (default 16992, or 16993 with TLS).")),
    ("tls", bool, False, typer.Option("--tls", help="Use TLS (port 16993).")),
    ("fingerprint", str | None, None, typer.Option(
        "--fingerprint", show_default=False,
        help="Trust the device's certificate by its SHA-256 fingerprint (implies --tls).")),
    ("insecure", bool, False, typer.Option(
        "--insecure", help="TLS without verifying the certificate (implies --tls).")),
    ("timeout", float, 60.0, typer.Option("--timeout", help="Seconds to wait for each reply.")),
    ("json", bool, False, typer.Option("--json", help="Print JSON instead of tables.")),
)


def device_command(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Give an ``async def command(device, ...)`` the HOST argument and the connection options, and run it."""
    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(fn, eval_str=True).parameters.values()
        if p.name != "device"
    ]
    host, *options = (
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, info])
        for name, kind, default, info in _DEVICE_PARAMETERS
    )
    parameters = [host, *own, *options]
    names = [name for name, *_ in _DEVICE_PARAMETERS]

    @functools.wraps(fn)
    def command(**kwargs: Any) -> None:
        device = Device(**{name: kwargs.pop(name) for name in names})
        run(fn(device, **kwargs))

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    del command.__wrapped__  # typer must see the new signature, not the coroutine's
    return command


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a command; expected failures become one line on stderr and exit 1 (2 for bad input)."""
    try:
        asyncio.run(coroutine)
    except CliValueError as exc:
        fail(str(exc), code=2)
    except MissingPassword:
        fail("no password: give -p/--password or set AMT_PASSWORD (there is no default password)", code=2)
    except WsmanFault as fault:
        fail(f"the device answered with a fault: {fault.describe()}")
    except TransportError as exc:
        fail(str(exc))


def fail(message: str, *, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


# ---------------------------------------------------------------------------------------------- output


def console() -> Console:
    return Console(highlight=False)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def object_table(obj: CimObject, title: str | None = None) -> Table:
    heading = title or obj.element
    table = Table(title=Text(heading), title_justify="left", min_width=len(heading))
    table.add_column("Property", style="bold", no_wrap=True)
    table.add_column("Value", overflow="fold")
    for name in obj.names():
        table.add_row(Text(name), Text(format_values(obj, name)))
    return table


def item_json(item: Item) -> dict[str, Any]:
    if isinstance(item, CimObject):
        return item.to_json()
    if isinstance(item, EndpointReference):
        return epr_to_json(item)
    return {"object": item.obj.to_json(), "epr": epr_to_json(item.epr)}


def show_items(items: Sequence[Item]) -> None:
    out = console()
    eprs = [i for i in items if isinstance(i, EndpointReference)]
    if eprs:
        table = Table(title=f"{len(eprs)} references", title_justify="left")
        table.add_column("Reference", overflow="fold")
        for epr in eprs:
            table.add_row(Text(format_epr(epr)))
        out.print(table)
    objects = [i for i in items if not isinstance(i, EndpointReference)]
    for n, item in enumerate(objects, 1):
        obj = item.obj if isinstance(item, ObjectAndEPR) else item
        out.print(object_table(obj, f"{obj.element} ({n}/{len(objects)})"))
        if isinstance(item, ObjectAndEPR):
            out.print(Text(f"reference: {format_epr(item.epr)}"), soft_wrap=True)
    if not items:
        out.print("no instances")


def identify_json(identity: IdentifyResponse) -> dict[str, Any]:
    return {
        "protocol_version": identity.protocol_version,
        "product_vendor": identity.product_vendor,
        "product_version": identity.product_version,
        "dash_version": identity.dash_version,
        "security_profiles": list(identity.security_profiles),
    }


def show_pairs(title: str, pairs: dict[str, Any]) -> None:
    table = Table(title=Text(title), title_justify="left", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in pairs.items():
        text = "\n".join(value) if isinstance(value, list) else "" if value is None else str(value)
        table.add_row(Text(key.replace("_", " ")), Text(text))
    console().print(table)


def show_object(device: Device, obj: CimObject) -> None:
    if device.json:
        print_json(obj.to_json())
    else:
        console().print(object_table(obj))


# ---------------------------------------------------------------------------------------------- commands

SelectorOption = Annotated[
    list[str] | None,
    typer.Option("-s", "--selector", metavar="KEY=VALUE", show_default=False,
                 help="Selects the instance (repeatable); a value may be a reference Class?Key=Value&..."),
]
ClassArgument = Annotated[str, typer.Argument(metavar="CLASS", show_default=False,
                                              help="Class name (AMT_..., CIM_..., IPS_...) or resource URI.")]


def _examples(text: str) -> str:
    return "Examples:\n\n" + text


class Mode(enum.StrEnum):
    objects = "obj"
    references = "epr"
    both = "obj-epr"


_MODES = {Mode.objects: None, Mode.references: ENUMERATE_EPR, Mode.both: ENUMERATE_OBJECT_AND_EPR}


@app.command(epilog=_examples("""outband wsman identify 10.0.0.5 --json"""))
@device_command
async def identify(device: Device) -> None:
    """Ask the device who it is (wsmid:Identify, answered without a password)."""
    async with device.client(authenticate=False) as client:
        identity = identify_json(await client.identify())
    if device.json:
        print_json(identity)
    else:
        show_pairs("Identify", identity)


@app.command(epilog=_examples("""outband wsman get 10.0.0.5 AMT_GeneralSettings
outband wsman get 10.0.0.5 CIM_SoftwareIdentity -s InstanceID=AMT --json"""))
@device_command
async def get(device: Device, cls: ClassArgument, selector: SelectorOption = None) -> None:
    """Read one instance of CLASS (the one the selectors name, or the only one)."""
    uri, selectors = class_uri(cls), parse_selectors(selector or ())
    async with device.client() as client:
        show_object(device, await client.get(uri, selectors))


@app.command("enumerate", epilog=_examples("""outband wsman enumerate 10.0.0.5 CIM_SoftwareIdentity
outband wsman enumerate 10.0.0.5 CIM_ComputerSystem --mode epr"""))
@device_command
async def enumerate_(
    device: Device,
    cls: ClassArgument,
    mode: Annotated[Mode, typer.Option("--mode", help="Objects, references (epr) or both (obj-epr).")] = Mode.objects,
) -> None:
    """List every instance of CLASS (Enumerate, then Pull until the end)."""
    uri = class_uri(cls)
    async with device.client() as client:
        items: list[Item] = [*await client.enumerate(uri, mode=_MODES[mode])]
    if device.json:
        print_json([item_json(i) for i in items])
    else:
        show_items(items)


@app.command(epilog=_examples("""outband wsman put 10.0.0.5 AMT_GeneralSettings HostName=lab-7 SharedFQDN=true
outband wsman put 10.0.0.5 AMT_EthernetPortSettings DHCPEnabled=true \\
    -s 'InstanceID=Intel(r) AMT Ethernet Port Settings 0'"""))
@device_command
async def put(
    device: Device,
    cls: ClassArgument,
    assignments: Annotated[list[str], typer.Argument(metavar="PROP=VALUE...", show_default=False,
                                                     help="New property values, typed through the class catalog.")],
    selector: SelectorOption = None,
) -> None:
    """Change properties of an instance: Get it, set PROP=VALUE, Put it back, show what the device kept."""
    uri, selectors = class_uri(cls), parse_selectors(selector or ())
    known = lookup(uri)
    values = parse_assignments(assignments, known.prop if known is not None else lambda name: None)
    async with device.client() as client:
        obj = await client.get(uri, selectors)
        unknown = [name for name in values if known is not None and known.prop(name) is None and name not in obj]
        if unknown:
            raise CliValueError(f"{obj.class_name} has no property {', '.join(unknown)}")
        assign(obj, values)
        show_object(device, await client.put(obj, selectors or None))


@app.command(epilog=_examples("""outband wsman invoke 10.0.0.5 CIM_PowerManagementService \\
    RequestPowerStateChange PowerState=on \\
    'ManagedElement=CIM_ComputerSystem?Name=ManagedSystem'"""))
@device_command
async def invoke(
    device: Device,
    cls: ClassArgument,
    method: Annotated[str, typer.Argument(metavar="METHOD", show_default=False, help="Method name.")],
    params: Annotated[list[str] | None, typer.Argument(
        metavar="PARAM=VALUE...", show_default=False,
        help="Input parameters; a reference is written Class?Key=Value&Key2=Value2.")] = None,
    selector: SelectorOption = None,
) -> None:
    """Call METHOD on an instance of CLASS and show its output (ReturnValue 0 means success)."""
    uri, selectors = class_uri(cls), parse_selectors(selector or ())
    message = CimObject.method_input(uri, method)
    assign(message, parse_assignments(params or (), message.prop_def))
    async with device.client() as client:
        show_object(device, await client.invoke(uri, method, message, selectors))


@app.command(epilog=_examples("""outband wsman decode capture.xml
outband wsman decode --json capture.xml | jq .instance.properties"""))
def decode(
    file: Annotated[Path, typer.Argument(metavar="FILE", show_default=False,
                                         help="A captured WS-MAN response envelope (XML).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show the typed contents of a captured reply (no device needed).

    An instance, enumeration items, a method's output, a created reference or a fault, as the SDK reads them.

    Captures from real devices can be inspected this way and attached to bug reports."""
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_ENVELOPE_BYTES + 1)
        envelope = parse_envelope(data)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    except DecodeError as exc:
        fail(f"{file} is not a WS-MAN envelope outband accepts: {exc}")
    header = {
        "action": envelope.header.action or None,
        "resource_uri": envelope.header.resource_uri,
        "message_id": envelope.header.message_id,
        "relates_to": envelope.header.relates_to,
    }
    if json_output:
        print_json({**header, **body_json(envelope.body)})
    else:
        show_pairs(str(file), header)
        show_body(envelope.body)


def body_json(body: Body) -> dict[str, Any]:
    if isinstance(body, CimObject):
        return {"output" if body.method_name else "instance": body.to_json()}
    if isinstance(body, EnumerateResponse | PullResponse):
        return {"items": [item_json(i) for i in body.items], "context": body.context,
                "end_of_sequence": body.end_of_sequence}
    if isinstance(body, ResourceCreated):
        return {"created": epr_to_json(body.epr)}
    if isinstance(body, WsmanFault):
        return {"fault": body.to_json()}
    if isinstance(body, IdentifyResponse):
        return {"identify": identify_json(body)}
    if body is None:
        return {}
    return {"body": type(body).__name__}


def show_body(body: Body) -> None:
    if isinstance(body, CimObject):
        console().print(object_table(body))
    elif isinstance(body, EnumerateResponse | PullResponse):
        show_items(body.items)
        console().print(Text("end of sequence" if body.end_of_sequence or body.context is None
                             else f"more to pull with context {body.context}"))
    elif isinstance(body, ResourceCreated):
        console().print(Text(f"created {format_epr(body.epr)}"))
    elif isinstance(body, WsmanFault):
        show_pairs("Fault", body.to_json())
    elif isinstance(body, IdentifyResponse):
        show_pairs("Identify", identify_json(body))
    elif body is None:
        console().print("empty body")
    else:
        console().print(Text(f"a {type(body).__name__} message"))


__all__ = ["Device", "app", "device_command", "format_value", "run"]
