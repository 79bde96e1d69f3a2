"""The web UI end to end in a real browser: Debian's chromium, headless, driven by playwright-core
(``browser/flows.mjs``) against ``outband up``'s console and simulated fleet (``console_with_fleet``, run in
this process so the test can play the person at the device: read the consent code off its screen, compare
the KVM picture with the device's framebuffer).

One browser run walks every flow (sign in, find a device, power it on, SOL, KVM, IDE-R boot, a bulk power job
over 50 devices, the admin pages, keyboard use, a tablet viewport, a viewer's view and forged requests); the
tests below assert on what each flow reported and on what the devices and the console recorded.  Screenshots
of each main page land in ``test-output/web``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import random
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select
from tests.console._kit import ADMIN_PASSWORD, USER_PASSWORD, create_user

from outband.cli.up import FleetPlan, Running, console_with_fleet
from outband.console.api import app as app_module
from outband.console.api.routes import jobs, operations, schedules
from outband.console.config import Settings
from outband.console.db.models import AuditEntry, Device, Job, JobDevice, Status
from outband.console.jobs.runner import LocalRunner
from outband.console.permissions import Role
from outband.console.secrets import generate_key
from outband.engine.core import Engine
from outband.engine.platforms.base import BootDevice, PowerState
from outband.engine.platforms.console import TextScreen
from outband.engine.platforms.framebuffer import VGA_PALETTE, TextFramebuffer
from outband.testing.images import iso_image

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "src" / "outband" / "console" / "web"
FLOWS = Path(__file__).with_name("browser") / "flows.mjs"
OUTPUT = REPO / "test-output" / "web"
CHROMIUM = Path("/usr/bin/chromium")
FLEET = 50
DEVICE = "sim-007"
ISO_LABEL = "OUTBAND-RESCUE"
ISO_MESSAGE = "outband rescue system loaded"
RUN_SECONDS = 600
SCREENSHOTS = (
    "01-sign-in", "02-fleet", "03-device-summary", "04-power", "05-settings", "06-sol", "07-kvm-consent", "08-kvm",
    "09-images", "10-ider", "11-bulk-job", "12-jobs", "13-job", "14-users", "15-audit", "16-tablet-fleet",
    "17-tablet-device", "18-viewer-fleet", "19-viewer-device", "20-device-history", "21-hardware", "22-logs",
    "23-alarms",
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


def _missing_tools() -> str | None:
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (bash scripts/setup.sh --dev installs it)"
    if not (WEB / "dist" / "index.html").exists() or not (WEB / "node_modules" / "playwright-core").exists():
        return "the web UI is not built (bash scripts/setup.sh builds it)"
    if shutil.which("node") is None:
        return "node is not installed"
    return None


@dataclass
class Stage:
    running: Running
    device_id: int
    engines: dict[int, Engine] = field(default_factory=dict)
    """The simulated engine behind each device id."""

    @property
    def url(self) -> str:
        return self.running.server.url

    def engine(self, device_id: int) -> Engine:
        return self.engines[device_id]


def _fleet_base() -> str:
    """The first of FLEET loopback addresses whose WS-MAN port is free (other tests use other addresses)."""
    for _ in range(50):
        base = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.1"
        with socket.socket() as probe:
            try:
                probe.bind((base, 16992))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
        return base
    raise RuntimeError("no free loopback block for the fleet")


@contextlib.contextmanager
def jobs_api_served() -> Any:
    """Serve the jobs API if create_app does not include it yet (its owner wires it into API_ROUTERS)."""
    with pytest.MonkeyPatch.context() as patch:
        if jobs.router not in app_module.API_ROUTERS:
            patch.setattr(app_module, "API_ROUTERS",
                          (*app_module.API_ROUTERS, operations.router, jobs.router, schedules.router))
        yield


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stage]:
    missing = _missing_tools()
    if missing:
        pytest.fail(missing)
    settings = Settings(data_dir=tmp_path_factory.mktemp("console"), listen="127.0.0.1:0",
                        admin_password=ADMIN_PASSWORD, secret_key=generate_key(), device_timeout=15,
                        device_connect_timeout=5)
    with jobs_api_served():
        async with console_with_fleet(settings, FleetPlan(FLEET, _fleet_base())) as running:
            runtime = running.runtime
            if runtime.service("jobs") is None:
                await runtime.start_service(LocalRunner())
            await create_user(runtime, "viewer", Role.VIEWER)
            assert running.fleet is not None
            async with runtime.db.read() as session:
                devices = {d.host: d.id for d in (await session.execute(select(Device))).scalars()}
                device_id = (await session.execute(select(Device.id).where(Device.name == DEVICE))).scalar_one()
            engines = {devices[address]: engine for address, engine in running.fleet.engines.items()}
            yield Stage(running, device_id, engines)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def flows(stage: Stage, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Run the browser once through every flow; the results by flow."""
    image = tmp_path_factory.mktemp("images") / "rescue.iso"
    image.write_bytes(iso_image(ISO_MESSAGE, label=ISO_LABEL))
    if OUTPUT.exists():
        shutil.rmtree(OUTPUT)
    config = {
        "url": stage.url, "webDir": str(WEB), "output": str(OUTPUT), "image": str(image),
        "imageSha256": hashlib.sha256(image.read_bytes()).hexdigest(),
        "admin": {"username": "admin", "password": ADMIN_PASSWORD},
        "viewer": {"username": "viewer", "password": USER_PASSWORD},
        "device": {"id": stage.device_id, "name": DEVICE},
    }
    process = await asyncio.create_subprocess_exec(
        "node", str(FLOWS), json.dumps(config), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "NODE_NO_WARNINGS": "1"}, limit=64 * 1024 * 1024)
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    results: dict[str, dict[str, Any]] = {}
    try:
        async with asyncio.timeout(RUN_SECONDS):
            while line := await process.stdout.readline():
                message = json.loads(line)
                if message["type"] == "ask":
                    answer = await _answer(stage, message)
                    process.stdin.write((json.dumps({"id": message["id"], **answer}) + "\n").encode())
                    await process.stdin.drain()
                elif message["type"] == "result":
                    results[message["flow"]] = message
                elif message["type"] == "done":
                    break
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    errors = (await process.stderr.read()).decode(errors="replace")
    if process.returncode != 0 and not results:
        pytest.fail(f"the browser run failed (exit {process.returncode}):\n{errors[-4000:]}")
    return results


def flow(results: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    outcome = results.get(name)
    assert outcome is not None, f"the browser run did not reach {name}"
    assert outcome["ok"], outcome.get("error")
    return outcome


# ------------------------------------------------------------------------------------------ the test's side

async def _answer(stage: Stage, message: dict[str, Any]) -> dict[str, Any]:
    engine = stage.engine(message["device"])
    machine = engine.platform
    if message["question"] == "consent_code":
        await _until(lambda: bool(machine.screen_messages))
        return {"code": machine.screen_messages[-1].rsplit(" ", 1)[1]}  # as read out: "042117" keeps its zero
    if message["question"] == "wait_screen":
        screen = machine.console.screen
        await _until(lambda: any(message["text"] in line for line in screen.text()))
        return {"lines": screen.text()}
    if message["question"] == "kvm_compare":
        rgba = await asyncio.to_thread(Path(message["path"]).read_bytes)
        return compare_canvas(machine.console.screen, rgba, message["width"], message["height"])
    raise AssertionError(f"unknown question {message}")


async def _until(condition: Callable[[], bool], within: float = 15.0) -> None:
    """What the device shows changes as the browser acts; wait for it (the engines run in this loop)."""
    step = 0.05
    for _ in range(int(within / step)):
        if condition():
            return
        await asyncio.sleep(step)
    raise AssertionError("the device did not show it in time")


def compare_canvas(screen: TextScreen, rgba: bytes, width: int, height: int) -> dict[str, Any]:
    """The canvas (RGBA) against the device's own picture of its screen: pixel by pixel, and read back as text."""
    framebuffer = TextFramebuffer(screen)
    if (width, height) != (framebuffer.width, framebuffer.height):
        return {"equal": False, "reason": f"canvas {width}x{height}, device {framebuffer.width}x{framebuffer.height}"}
    indices = framebuffer.region(0, 0, width, height)
    expected = b"".join(bytes(VGA_PALETTE[i]) for i in indices)
    canvas = bytes(b for k, b in enumerate(rgba) if k % 4 != 3)
    differing = sum(1 for k in range(0, len(canvas), 3) if canvas[k:k + 3] != expected[k:k + 3])
    palette = {bytes(rgb): index for index, rgb in enumerate(VGA_PALETTE)}
    try:
        shown = framebuffer.read_text(bytes(palette[canvas[k:k + 3]] for k in range(0, len(canvas), 3)))
    except KeyError:
        shown = []
    return {"equal": differing == 0, "differing": differing, "text": shown, "screen": screen.text()}


# ------------------------------------------------------------------------------------------ the flows

async def test_sign_in_shows_the_fleet(flows) -> None:
    outcome = flow(flows, "sign_in")
    assert outcome["total"] == FLEET
    assert outcome["rows"] == FLEET  # the first page holds 50
    assert outcome["connected"] == FLEET  # the fleet dialled the console's MPS: every tunnel shown up


async def test_find_a_device(flows, stage) -> None:
    outcome = flow(flows, "find_device")
    assert outcome["rows"] == [DEVICE]
    assert outcome["url"] == f"/devices/{stage.device_id}"
    assert outcome["tunnel"].startswith("connected since ")
    assert "from 127.0.0.1" in outcome["tunnel"]
    assert any("tunnel up from 127.0.0.1 to MPS node" in line for line in outcome["tunnels"]), outcome["tunnels"]


async def test_power_on_changes_the_state_shown(flows, stage) -> None:
    outcome = flow(flows, "power_on")
    assert (outcome["before"], outcome["after"]) == ("Off", "On")
    assert outcome["url"] == f"/devices/{stage.device_id}/power"
    assert stage.engine(stage.device_id).platform.power_state is PowerState.ON


async def test_sol_runs_a_command_on_the_simulated_shell(flows, stage) -> None:
    outcome = flow(flows, "sol")
    hostname = stage.engine(stage.device_id).platform.console.hostname
    assert "browser-says-hello" in outcome["screen"]
    assert f"Linux {hostname} " in outcome["screen"]  # uname -a, answered by the device
    assert "browser-says-hello\r\n" in outcome["log"]
    assert outcome["filename"].startswith(f"{DEVICE}-sol-")
    actions = await _audit(stage, "sol.")
    assert [a[:2] for a in actions] == [("sol.open", "ok"), ("sol.close", "ok")]
    assert actions[1][2]["bytes_to_device"] > len("echo browser-says-hello\r")


async def test_kvm_needs_consent_then_shows_the_device_screen(flows, stage) -> None:
    outcome = flow(flows, "kvm")
    assert "consent" in outcome["refusal"]
    assert any("typed-on-the-kvm-screen" in line for line in outcome["shell"]["lines"])
    compared = outcome["compared"]
    assert compared["equal"], f"{compared.get('differing')} pixels differ: {compared.get('reason', '')}"
    assert compared["text"] == compared["screen"]
    screenshot = await asyncio.to_thread(Path(outcome["screenshot"]).read_bytes)
    assert screenshot.startswith(b"\x89PNG\r\n\x1a\n")
    kvm = [a[:2] for a in await _audit(stage, "kvm.")]
    assert kvm[0] == ("kvm.open", "failed")
    assert ("kvm.open", "ok") in kvm


async def test_boot_from_an_uploaded_image_reports_the_boot(flows, stage) -> None:
    outcome = flow(flows, "ider")
    assert outcome["state"] == "done", outcome["run"]
    assert f"Booted from IDE-R CD-ROM: {ISO_LABEL}" in outcome["console"]
    assert ISO_MESSAGE in outcome["console"]
    last_boot = stage.engine(stage.device_id).platform.last_boot
    assert last_boot is not None
    assert last_boot.device is BootDevice.IDER_CD
    assert [a[1] for a in await _audit(stage, "ider.boot")] == ["ok"]


async def test_hardware_logs_and_alarms_tabs_show_what_the_device_said(flows, stage) -> None:
    outcome = flow(flows, "device_tabs")
    profile = stage.engine(stage.device_id).platform.profile
    assert profile.manufacturer in outcome["chassis"]
    assert outcome["events"].split(" of ")[1] != "0 records"  # the power-on and the boots were logged
    assert outcome["filtered"]
    assert all("KVM" in row for row in outcome["filtered"])  # the KVM session of the kvm flow, found by the filter
    header, *rows = outcome["csv"].strip().splitlines()
    assert header == "#,Time,Event,By,From,Id"
    assert len(rows) == len(outcome["filtered"])


async def test_a_bulk_power_job_over_fifty_devices_finishes_live(flows, stage) -> None:
    outcome = flow(flows, "bulk_power")
    assert outcome["perDevice"] == FLEET  # every device's outcome arrived on the page
    assert "50 of 50 done: 50 succeeded" in outcome["summary"]
    assert all(engine.platform.power_state is PowerState.ON for engine in stage.engines.values())
    async with stage.running.runtime.db.read() as session:
        job = await session.get(Job, outcome["jobId"])
        rows = (await session.execute(select(JobDevice.status).where(JobDevice.job_id == job.id))).scalars().all()
    assert (job.operation, job.params, job.status) == ("power", {"action": "on"}, Status.SUCCEEDED)
    assert rows == [Status.SUCCEEDED] * FLEET
    assert "power on" in outcome["schedule"]
    assert "tags: kiosk" in outcome["schedule"]
    assert "0 7 * * 1-5 (UTC)" in outcome["schedule"]


async def test_admin_pages_and_the_audit_download(flows) -> None:
    outcome = flow(flows, "admin_pages")
    lines = outcome["csv"].strip().splitlines()
    assert lines[0].startswith("id,at,actor,via,client,action,outcome")
    assert len(lines) == 2
    assert ",admin,session," in lines[1]
    assert ",sol.open,ok," in lines[1]


async def test_keyboard_moves_between_tabs(flows, stage) -> None:
    outcome = flow(flows, "keyboard")
    assert outcome["history"].startswith("Reached on ")  # the jobs so far drew the reachability chart
    assert (outcome["second"], outcome["last"]) == ("Power & boot", "Boot from image")
    assert outcome["url"] == f"/devices/{stage.device_id}/ider"


async def test_a_tablet_width_needs_no_sideways_scrolling(flows) -> None:
    assert flow(flows, "tablet")["overflow"] <= 0


async def test_a_viewer_sees_no_actions_and_its_forged_requests_are_refused(flows, stage) -> None:
    outcome = flow(flows, "viewer")
    assert set(outcome["fleetButtons"]) <= {"Apply", "Previous", "Next"}
    assert outcome["checkboxes"] == 0
    assert outcome["tabs"] == ["Summary", "Power & boot", "Hardware", "Logs", "Alarm clocks", "Consent", "Settings"]
    assert outcome["powerButtons"] == 0
    forged = outcome["forged"]
    assert {k: v for k, v in forged.items() if k != "socket"} == {
        "power": 403, "powerWithoutCsrf": 403, "ticket": 403, "image": 403, "boot": 403, "user": 403}
    assert forged["socket"]["type"] == "error"
    assert forged["socket"]["code"] == "forbidden"
    assert all(engine.platform.power_state is PowerState.ON for engine in stage.engines.values())
    async with stage.running.runtime.db.read() as session:
        denied = (await session.execute(select(AuditEntry.action, AuditEntry.detail).where(
            AuditEntry.actor == "viewer", AuditEntry.outcome == "denied"))).all()
    assert {action for action, _ in denied} >= {"operation_power", "issue_redirect_ticket", "create_image",
                                                "boot_from_image", "create_user", "sol.open"}
    assert any(detail.get("reason") == "csrf" for _, detail in denied)


async def test_a_job_says_it_waits_for_a_cira_device_that_is_away(flows) -> None:
    outcome = flow(flows, "waiting_offline")
    assert outcome["badge"] == "Offline"
    assert "0 of 1 done" in outcome["text"]
    assert outcome["text"].endswith("1 pending; waiting for 1 CIRA device to dial in")


async def test_pages_are_accessible_and_error_free(flows) -> None:
    outcome = flow(flows, "accessibility")
    assert {page: problems for page, problems in outcome["problems"].items() if problems} == {}
    assert outcome["consoleErrors"] == []


async def test_screenshots_of_every_main_page(flows) -> None:
    missing = [name for name in SCREENSHOTS if not (OUTPUT / f"{name}.png").is_file()]
    assert missing == []


async def _audit(stage: Stage, prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
    async with stage.running.runtime.db.read() as session:
        rows = (await session.execute(select(AuditEntry).where(AuditEntry.action.startswith(prefix),
                                                               AuditEntry.actor == "admin")
                                      .order_by(AuditEntry.id))).scalars()
        return [(e.action, e.outcome, e.detail) for e in rows]
