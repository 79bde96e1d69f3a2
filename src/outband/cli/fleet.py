"""``outband fleet``: the console's REST API from the command line -- devices, discovery and fleet jobs.

Where and as whom: the console at ``OUTBAND_URL`` (or ``--url``; default http://127.0.0.1:8080), signed in
with the first of ``OUTBAND_TOKEN``, ``OUTBAND_USER`` + ``OUTBAND_PASSWORD`` (a session for this one command,
ended when it finishes), or the API token ``outband fleet login`` saved for that URL.

Operations on devices (power, boot, inventory) run as console jobs: the command submits one, shows a progress
bar while it runs (on a terminal) and prints one result per device.  Every listing and result takes
``--json``.  Exit status: 0 when every device succeeded, 1 when the console refused the request or any
device failed, 2 for bad input.
"""

from __future__ import annotations

import enum
import json
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..client.console_api import (
    DEFAULT_URL,
    ConsoleApi,
    ConsoleApiError,
    Device,
    Discovery,
    Job,
    JobDevice,
    Selection,
    selection,
)

EXAMPLES = """Examples:

  outband fleet login                      (asks the password; saves an API token)
  outband fleet devices --tag lab
  outband fleet power status --all --json
  outband fleet power on sim-001 sim-002
  outband fleet boot pxe --group floor-1 --then reset
  outband fleet add pc-7 10.0.0.7 --tag lab    (AMT_PASSWORD holds the device's password)
  outband fleet discover 10.0.0.0/24
  outband fleet jobs"""

app = typer.Typer(name="fleet", help="Manage the fleet through the console's API: devices, discovery, power, "
                  "boot, inventory, jobs.", epilog=EXAMPLES, no_args_is_help=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

TOKENS_FILE: Final = "console-tokens.json"
SUCCEEDED: Final = "succeeded"


def fail(message: str, *, code: int = 1) -> NoReturn:
    err.print(Text(f"error: {message}"))
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


# ---------------------------------------------------------------------------------------------- signing in


def tokens_path() -> Path:
    """Where ``login`` keeps API tokens, one per console URL (``$XDG_CONFIG_HOME/outband``, mode 0600)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "outband" / TOKENS_FILE


def saved_tokens() -> dict[str, dict[str, Any]]:
    path = tokens_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        fail(f"cannot read the saved tokens in {path}: {exc}")
    return data if isinstance(data, dict) else {}


def save_tokens(tokens: dict[str, dict[str, Any]]) -> Path:
    path = tokens_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(tokens, out, indent=2)
    partial.replace(path)
    return path


@dataclass(frozen=True, slots=True)
class Connection:
    url: str

    def api(self) -> ConsoleApi:
        """A client signed in as the environment or the saved token says."""
        token = os.environ.get("OUTBAND_TOKEN")
        user, password = os.environ.get("OUTBAND_USER"), os.environ.get("OUTBAND_PASSWORD")
        if token:
            return ConsoleApi(self.url, token=token)
        if user and password:
            return ConsoleApi(self.url, username=user, password=password)
        saved = saved_tokens().get(self.url)
        if saved and isinstance(saved.get("token"), str):
            return ConsoleApi(self.url, token=saved["token"])
        fail(f"not signed in to {self.url}: run `outband fleet login`, or set OUTBAND_USER and OUTBAND_PASSWORD "
             "(or OUTBAND_TOKEN)", code=2)


@contextmanager
def console_api(ctx: typer.Context) -> Iterator[ConsoleApi]:
    """The signed-in client for a command; API failures become one line on stderr and exit 1."""
    connection: Connection = ctx.obj
    try:
        with connection.api() as api:
            yield api
    except ConsoleApiError as exc:
        hint = ""
        if exc.status == 401:
            hint = " (sign in again: `outband fleet login`)"
        fail(exc.describe() + hint)


@app.callback()
def fleet(
    ctx: typer.Context,
    url: Annotated[str, typer.Option("--url", envvar="OUTBAND_URL", help="The console.")] = DEFAULT_URL,
) -> None:
    ctx.obj = Connection(url.rstrip("/"))


def _token_name() -> str:
    """``cli-<host>``: what the token list shows, within the API's label rules."""
    host = re.sub(r"[^A-Za-z0-9_.:@+-]", "-", socket.gethostname()) or "host"
    return f"cli-{host}"[:64]


@app.command()
def login(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("-u", "--user", envvar="OUTBAND_USER", help="Console account.")] = "admin",
    days: Annotated[int | None, typer.Option("--days", min=1, max=3650,
                                             help="The token expires after this many days (default: never).")
                    ] = None,
) -> None:
    """Sign in (password from OUTBAND_PASSWORD or asked) and save an API token for this console."""
    connection: Connection = ctx.obj
    password = os.environ.get("OUTBAND_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            fail("no password: set OUTBAND_PASSWORD or run on a terminal", code=2)
        password = typer.prompt(f"Password for {user} at {connection.url}", hide_input=True)
    try:
        with ConsoleApi(connection.url, username=user, password=password) as api:
            created = api.create_token(_token_name(), expires_in_days=days)
            role = api.me()["role"]
    except ConsoleApiError as exc:
        fail(exc.describe())
    tokens = saved_tokens()
    tokens[connection.url] = {"token": created["token"], "token_id": created["id"], "user": user}
    path = save_tokens(tokens)
    err.print(Text(f"signed in to {connection.url} as {user} (role {role}); API token {created['name']} saved in "
                   f"{path}"))


@app.command()
def logout(ctx: typer.Context) -> None:
    """Revoke the token `login` saved for this console and forget it."""
    connection: Connection = ctx.obj
    tokens = saved_tokens()
    saved = tokens.pop(connection.url, None)
    if saved is None:
        fail(f"no saved token for {connection.url}", code=2)
    try:
        with ConsoleApi(connection.url, token=saved["token"]) as api:
            api.revoke_token(int(saved["token_id"]))
    except ConsoleApiError as exc:
        if exc.status not in (401, 404):  # already revoked or expired: forgetting it is all that is left
            fail(exc.describe())
    save_tokens(tokens)
    err.print(Text(f"signed out of {connection.url}"))


# ---------------------------------------------------------------------------------------------- devices


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def device_record(device: Device) -> dict[str, Any]:
    """A device as one flat JSON object (what ``devices --json`` prints)."""
    state, cira = device["state"], device["cira"]
    return {
        "id": device["id"], "name": device["name"], "host": device["host"], "transport": device["transport"],
        "group": device["group"], "tags": device["tags"],
        "reachable": cira["online"] if cira else state["reachable"],  # a CIRA device: whether it is dialled in
        "connected_since": cira["connected_since"] if cira and cira["online"] else None,
        "power_state": state["power_state"], "power": state["power"], "amt_version": state["amt_version"],
        "last_error": state["last_error"],
    }


def _yes_no(value: bool | None) -> Text:
    if value is None:
        return Text("?", style="dim")
    return Text("yes", style="green") if value else Text("no", style="red")


@app.command()
def devices(
    ctx: typer.Context,
    tag: Annotated[str | None, typer.Option("--tag", help="Only devices with this tag.")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Only devices in this group.")] = None,
    search: Annotated[str | None, typer.Option("--search", help="Part of the name or address.")] = None,
    reachable: Annotated[bool | None, typer.Option("--reachable/--unreachable", show_default=False,
                                                   help="Only devices that answered (or did not) last time.")
                         ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List devices with their last known state."""
    with console_api(ctx) as api:
        found = [device_record(d) for d in api.devices(tag=tag, group=group, reachable=reachable, search=search,
                                                       limit=limit)]
    if as_json:
        print_json(found)
        return
    table = Table(title=f"{len(found)} device(s)", title_justify="left")
    for column in ("ID", "Name", "Host", "Reachable", "Power"):
        table.add_column(column, no_wrap=True)
    for column in ("Tags", "Group", "AMT"):
        table.add_column(column, overflow="fold")
    for record in found:
        table.add_row(str(record["id"]), Text(record["name"]), Text(record["host"]), _yes_no(record["reachable"]),
                      record["power"], Text(", ".join(record["tags"])), Text(record["group"] or ""),
                      Text(record["amt_version"] or ""))
    Console(highlight=False).print(table)


@app.command()
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name in the console.")],
    host: Annotated[str | None, typer.Argument(
        help="Address (name, IPv4 or IPv6); for a CIRA device the name on its TLS certificate (default: its UUID).",
        show_default=False)] = None,
    user: Annotated[str, typer.Option("-u", "--user", help="The device's Digest user.")] = "admin",
    password: Annotated[str | None, typer.Option(
        "-p", "--password", envvar="AMT_PASSWORD", show_default=False,
        help="The device's password (prefer AMT_PASSWORD: command lines are visible to other users).")] = None,
    tls: Annotated[bool, typer.Option("--tls", help="Talk TLS (port 16993).")] = False,
    fingerprint: Annotated[str | None, typer.Option(help="Pin the device's certificate (SHA-256).")] = None,
    tags: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Group.")] = None,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Connect to the device before adding it.")
                     ] = True,
    cira_uuid: Annotated[str | None, typer.Option(
        "--cira", metavar="UUID", show_default=False,
        help="The device dials the console's MPS (CIRA) and is known by this system UUID.")] = None,
    cira_user: Annotated[str | None, typer.Option(
        "--cira-user", show_default=False, help="Its own MPS login (else it must use the MPS's shared one).")] = None,
    cira_password: Annotated[str | None, typer.Option(
        "--cira-password", envvar="OUTBAND_CIRA_PASSWORD", show_default=False,
        help="Its own MPS password (prefer OUTBAND_CIRA_PASSWORD).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a device; the console first connects to it (unless --no-check) and says what failed if it cannot.

    A CIRA device (--cira UUID) is not checked: it is reached once it dials in.
    """
    if not password:
        fail("give the device's password: -p or AMT_PASSWORD", code=2)
    if cira_uuid is None and host is None:
        fail("give the device's address (HOST), or --cira UUID for a device that dials in", code=2)
    if cira_uuid is None and (cira_user or cira_password):
        fail("--cira-user and --cira-password are for a CIRA device (--cira UUID)", code=2)
    spec: dict[str, Any] = {"name": name, "username": user, "password": password, "use_tls": tls,
                            "tags": tags or [], "group": group}
    if host is not None:
        spec["host"] = host
    if cira_uuid is not None:
        spec.update(transport="cira", uuid=cira_uuid)
        if cira_user or cira_password:
            spec.update(cira_username=cira_user, cira_password=cira_password)
    if fingerprint:
        spec["fingerprint"] = fingerprint
    with console_api(ctx) as api:
        device = device_record(api.add_device(spec, check=check))
    if as_json:
        print_json(device)
    else:
        err.print(Text(f"added {device['name']} (id {device['id']}, power {device['power']})"))


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV: name, host, username, password, "
                                         "tls, http_port, tls_port, fingerprint, tags, group, transport, uuid, "
                                         "cira_username, cira_password (a header line first).")],
    user: Annotated[str | None, typer.Option("-u", "--user", help="Device user for rows without one.")] = None,
    password: Annotated[str | None, typer.Option(
        "-p", "--password", envvar="AMT_PASSWORD", show_default=False,
        help="Device password for rows without one (or AMT_PASSWORD).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Connect to each device before adding it.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Add devices from a CSV file; each row is judged on its own and reported by line number."""
    with console_api(ctx) as api:
        report = api.import_devices(file.read_bytes(), username=user, password=password, check=check)
    if as_json:
        print_json(report)
    else:
        failed = [row for row in report["rows"] if row["status"] != "added"]
        if failed:
            table = Table(title=f"{len(failed)} row(s) not added", title_justify="left")
            for column in ("Line", "Name", "Error"):
                table.add_column(column, overflow="fold")
            for row in failed:
                table.add_row(str(row["row"]), Text(row["name"] or ""), Text(row["error"] or ""))
            Console(highlight=False).print(table)
        err.print(Text(f"added {report['added']}, failed {report['failed']}"))
    if report["failed"]:
        raise typer.Exit(1)


@app.command()
def discover(
    ctx: typer.Context,
    network: Annotated[str, typer.Argument(help="CIDR range (10.0.0.0/24) or one address.")],
    http_port: Annotated[int, typer.Option(help="Probe this HTTP port; 0: none.")] = 16992,
    tls_port: Annotated[int, typer.Option(help="Probe this TLS port; 0: none.")] = 16993,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the scan and list what it found.")
                    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Scan a range for AMT endpoints (Identify, no credentials); admins only."""
    with console_api(ctx) as api:
        scan = api.start_discovery(network, http_port=http_port or None, tls_port=tls_port or None)
        if wait:
            with _progress(f"discovery {scan['id']} of {scan['network']}") as track:
                scan = api.wait_discovery(scan["id"], lambda s: track(s["probed"], s["total"], ""))
    if as_json:
        print_json(scan)
        return
    if not wait:
        err.print(Text(f"discovery {scan['id']} started ({scan['total']} probes)"))
        return
    _show_discovery(scan)
    if scan["status"] != SUCCEEDED:
        fail(f"discovery {scan['status']}: {scan['error'] or ''}")


def _show_discovery(scan: Discovery) -> None:
    table = Table(title=f"{len(scan['found'])} endpoint(s) in {scan['network']}", title_justify="left")
    for column in ("Address", "Port", "TLS", "Product", "Version", "Device"):
        table.add_column(column, overflow="fold")
    for end in scan["found"]:
        table.add_row(Text(end["address"]), str(end["port"]), _yes_no(end["tls"]), Text(end["product_vendor"]),
                      Text(end["product_version"]), "" if end["device_id"] is None else str(end["device_id"]))
    Console(highlight=False).print(table)


# ---------------------------------------------------------------------------------------------- jobs


Track = Callable[[int, int, str], None]


@contextmanager
def _progress(title: str) -> Iterator[Track]:
    """A progress bar on stderr (only on a terminal); yields ``track(done, total, note)``."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task(title, total=None)

        def track(done: int, total: int, note: str = "") -> None:
            progress.update(task, completed=done, total=total or None, description=title + note)

        yield track


def job_progress(track: Track) -> Callable[[Job], None]:
    """Feed a job's state to a progress bar, saying how many devices it waits for to dial in."""
    return lambda job: track(job_done(job), job["total"], waiting_note(job))


def waiting_note(job: Job) -> str:
    """What the progress line adds while CIRA devices the job needs are away."""
    waiting = job.get("waiting_offline", 0)
    if not waiting:
        return ""
    return f" (waiting for {waiting} CIRA device{'s' if waiting != 1 else ''} to dial in)"


def job_done(job: Job) -> int:
    """Devices that are finished in a job (succeeded, failed or cancelled)."""
    return sum(job["counts"].get(state, 0) for state in ("succeeded", "failed", "cancelled"))


def result_record(row: JobDevice) -> dict[str, Any]:
    """One device's outcome (what ``--json`` prints per device)."""
    return {"device_id": row["device_id"], "device": row["device_name"], "status": row["status"],
            "result": row["result"], "error": row["error"], "reason": row["reason"]}


def describe_result(result: dict[str, Any] | None) -> str:
    """One line for a device's result: its scalar values, ``key=value``."""
    if not result:
        return ""
    return ", ".join(f"{key}={value}" for key, value in result.items() if not isinstance(value, (dict, list)))


@dataclass(frozen=True, slots=True)
class Target:
    """The devices a command addresses, as given on its command line."""

    names: Sequence[str]
    tags: Sequence[str]
    groups: Sequence[str]
    every: bool

    def selection(self) -> Selection:
        if not (self.names or self.tags or self.groups or self.every):
            fail("say which devices: names, --tag T, --group G or --all", code=2)
        return selection(names=self.names, tags=self.tags, groups=self.groups, every=self.every)


DevicesArgument = Annotated[list[str] | None, typer.Argument(metavar="DEVICE", show_default=False,
                                                              help="Device names.")]
TagsOption = Annotated[list[str] | None, typer.Option("--tag", help="Every device with this tag (repeatable).")]
GroupsOption = Annotated[list[str] | None, typer.Option("--group", help="Every device in this group (repeatable).")]
AllOption = Annotated[bool, typer.Option("--all", help="Every device.")]
WaitOption = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the job and print its results.")]


def run_job(ctx: typer.Context, operation: str, target: Target, params: dict[str, Any], *, wait: bool,
            as_json: bool) -> None:
    """Submit a job; unless --no-wait, follow it to the end and print one result per device."""
    with console_api(ctx) as api:
        job = api.submit(operation, target.selection(), params)
        if not wait:
            if as_json:
                print_json(job)
            else:
                err.print(Text(f"job {job['id']} started: {operation} on {job['total']} device(s)"))
            return
        with _progress(f"job {job['id']}: {operation}") as track:
            job = api.wait_job(job["id"], job_progress(track))
        results = [result_record(row) for row in api.job_devices(job["id"])]
    show_results(job, results, as_json=as_json)
    if job["status"] != SUCCEEDED or any(r["status"] != SUCCEEDED for r in results):
        raise typer.Exit(1)


def show_results(job: Job, results: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        print_json(results)
        return
    table = Table(title=f"job {job['id']} {job['operation']}: {job['status']}", title_justify="left")
    for column in ("Device", "Status", "Result", "Error"):
        table.add_column(column, overflow="fold")
    for result in results:
        style = "green" if result["status"] == SUCCEEDED else "red"
        error = ": ".join(part for part in (result["reason"], result["error"]) if part)
        table.add_row(Text(result["device"]), Text(result["status"], style=style),
                      Text(describe_result(result["result"])), Text(error))
    Console(highlight=False).print(table)


class PowerCommand(enum.StrEnum):
    ON = "on"
    OFF = "off"
    SOFT_OFF = "soft-off"
    RESET = "reset"
    CYCLE = "cycle"
    STATUS = "status"


_POWER_ACTIONS: Final = {PowerCommand.ON: "on", PowerCommand.OFF: "off", PowerCommand.SOFT_OFF: "soft_off",
                         PowerCommand.RESET: "reset", PowerCommand.CYCLE: "cycle", PowerCommand.STATUS: "state"}
"""Command-line words -> the power operation's ``action``."""


@app.command()
def power(
    ctx: typer.Context,
    action: Annotated[PowerCommand, typer.Argument(help="What to do (status only reads the power state).")],
    names: DevicesArgument = None,
    tags: TagsOption = None,
    groups: GroupsOption = None,
    every: AllOption = False,
    wait: WaitOption = True,
    as_json: JsonOption = False,
) -> None:
    """Power devices on, off, soft-off, reset or cycle, or read their power state."""
    run_job(ctx, "power", Target(names or [], tags or [], groups or [], every), {"action": _POWER_ACTIONS[action]},
            wait=wait, as_json=as_json)


class BootChoice(enum.StrEnum):
    PXE = "pxe"
    DISK = "disk"
    CD = "cd"
    IDER_CD = "ider-cd"
    IDER_FLOPPY = "ider-floppy"
    BIOS = "bios"


_BOOT_DEVICES: Final = {BootChoice.PXE: "pxe", BootChoice.DISK: "disk", BootChoice.CD: "cd",
                        BootChoice.IDER_CD: "ider_cd", BootChoice.IDER_FLOPPY: "ider_floppy",
                        BootChoice.BIOS: "bios_setup"}


class Then(enum.StrEnum):
    NONE = "none"
    ON = "on"
    RESET = "reset"
    AUTO = "auto"


@app.command()
def boot(
    ctx: typer.Context,
    source: Annotated[BootChoice, typer.Argument(help="What the next boot starts from.")],
    names: DevicesArgument = None,
    tags: TagsOption = None,
    groups: GroupsOption = None,
    every: AllOption = False,
    sol: Annotated[bool, typer.Option("--sol", help="Show the BIOS console over Serial-over-LAN.")] = False,
    then: Annotated[Then, typer.Option("--then", help="Afterwards: nothing, power on, reset, or auto (on if off, "
                                       "else reset).")] = Then.NONE,
    wait: WaitOption = True,
    as_json: JsonOption = False,
) -> None:
    """Choose the next boot device (once), optionally powering on or resetting to boot from it now."""
    run_job(ctx, "boot", Target(names or [], tags or [], groups or [], every),
            {"device": _BOOT_DEVICES[source], "sol": sol, "then": then.value}, wait=wait, as_json=as_json)


@app.command()
def inventory(
    ctx: typer.Context,
    names: DevicesArgument = None,
    tags: TagsOption = None,
    groups: GroupsOption = None,
    every: AllOption = False,
    wait: WaitOption = True,
    as_json: JsonOption = False,
) -> None:
    """Read the devices' hardware inventory (stored by the console as a snapshot)."""
    run_job(ctx, "inventory", Target(names or [], tags or [], groups or [], every), {}, wait=wait, as_json=as_json)


@app.command()
def jobs(
    ctx: typer.Context,
    job_id: Annotated[int | None, typer.Argument(metavar="JOB", help="Show this job with its per-device "
                                                 "results (else list recent jobs).")] = None,
    cancel: Annotated[bool, typer.Option("--cancel", help="Cancel the job: devices not yet started are left.")
                      ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job to finish first.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many jobs to list.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List recent jobs, or show one (--wait to follow it, --cancel to stop it)."""
    if job_id is None:
        if cancel or wait:
            fail("--cancel and --wait need a job id", code=2)
        with console_api(ctx) as api:
            listed = api.jobs(limit=limit)
        if as_json:
            print_json(listed)
            return
        table = Table(title=f"{len(listed)} job(s)", title_justify="left")
        for column in ("ID", "Operation", "Status", "Devices", "Done"):
            table.add_column(column, overflow="fold")
        for job in listed:
            table.add_row(str(job["id"]), job["operation"], job["status"], str(job["total"]), str(job_done(job)))
        Console(highlight=False).print(table)
        return
    with console_api(ctx) as api:
        job = api.cancel_job(job_id) if cancel else api.job(job_id)
        if wait:
            with _progress(f"job {job_id}: {job['operation']}") as track:
                job = api.wait_job(job_id, job_progress(track))
        results = [result_record(row) for row in api.job_devices(job_id)]
    show_results(job, results, as_json=as_json)
