"""``outband fleet`` against a live console with five simulated engines registered (``outband up``'s setup),
through the real HTTP API: signing in (saved token, environment session), listings and filters, adding,
importing, discovering, and the errors a user sees."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from tests.cli._live import ADMIN_PASSWORD, LiveConsole, console_settings
from typer.testing import CliRunner

from outband.cli.fleet import waiting_note
from outband.cli.main import app
from outband.client.console_api import ConsoleApi, ConsoleApiError

FLEET = 5


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveConsole]:
    settings = console_settings(tmp_path_factory.mktemp("console"), discovery_timeout=1)
    with LiveConsole(settings, engines=FLEET) as console:
        yield console


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    return tmp_path / "config"


def fleet(live: LiveConsole, config_home: Path, *args: str, **env: str | None) -> tuple[int, str, str]:
    """Run ``outband fleet ARGS``; returns (exit code, stdout, stderr).  Signed in as admin through the
    environment unless ``env`` says otherwise."""
    environment: dict[str, str | None] = {
        "OUTBAND_URL": live.url, "XDG_CONFIG_HOME": str(config_home), "OUTBAND_TOKEN": None,
        "OUTBAND_USER": "admin", "OUTBAND_PASSWORD": ADMIN_PASSWORD, "AMT_PASSWORD": None, **env}
    result = CliRunner().invoke(app, ["fleet", *args], env=environment)
    return result.exit_code, result.stdout, result.stderr


def fleet_json(live: LiveConsole, config_home: Path, *args: str, **env: str | None) -> Any:
    code, out, err = fleet(live, config_home, *args, "--json", **env)
    assert code == 0, err
    return json.loads(out)


def prefix(live: LiveConsole) -> str:
    assert live.running is not None
    return live.running.report.addresses[0].rsplit(".", 1)[0]


# ---------------------------------------------------------------------------------------------- listing


def test_devices_json_carries_identity_and_state(live, config_home):
    devices = fleet_json(live, config_home, "devices")
    fleet_devices = [d for d in devices if d["name"].startswith("sim-")]
    assert [d["name"] for d in fleet_devices] == ["sim-001", "sim-002", "sim-003", "sim-004", "sim-005"]
    for device in fleet_devices:
        assert set(device) >= {"id", "name", "host", "reachable", "power_state", "power"}
        assert device["reachable"] is True
        assert device["transport"] == "cira"  # the engines dialled the console's MPS
        assert device["power_state"] == 8  # the simulated PCs start off
        assert device["power"] == "off_soft"
        assert device["host"].startswith(prefix(live) + ".")


def test_devices_filters_reach_the_console(live, config_home):
    kiosks = fleet_json(live, config_home, "devices", "--tag", "kiosk")
    assert [d["name"] for d in kiosks] == ["sim-005"]
    second_floor = fleet_json(live, config_home, "devices", "--group", "floor-2", "--search", "sim-")
    assert [d["name"] for d in second_floor] == ["sim-004", "sim-005"]
    assert fleet_json(live, config_home, "devices", "--tag", "lab", "--unreachable") == []
    assert len(fleet_json(live, config_home, "devices", "--tag", "lab", "--limit", "2")) == 2


def test_devices_table_names_every_device(live, config_home):
    code, out, err = fleet(live, config_home, "devices", "--tag", "lab")
    assert code == 0, err
    assert "5 device(s)" in out
    for n in range(1, FLEET + 1):
        assert f"sim-00{n}" in out


# ---------------------------------------------------------------------------------------------- signing in


def test_login_saves_a_private_token_that_later_commands_use_and_logout_revokes(live, config_home):
    code, _, err = fleet(live, config_home, "login", "--user", "admin")
    assert code == 0, err
    assert "role admin" in err
    saved_file = config_home / "outband" / "console-tokens.json"
    assert stat.S_IMODE(saved_file.stat().st_mode) == 0o600
    saved = json.loads(saved_file.read_text())[live.url]

    devices = fleet_json(live, config_home, "devices", OUTBAND_USER=None, OUTBAND_PASSWORD=None)
    assert len(devices) >= FLEET

    code, _, err = fleet(live, config_home, "logout", OUTBAND_USER=None, OUTBAND_PASSWORD=None)
    assert code == 0, err
    assert live.url not in json.loads(saved_file.read_text())
    with ConsoleApi(live.url, token=saved["token"]) as api, pytest.raises(ConsoleApiError) as refused:
        api.me()
    assert refused.value.status == 401

    code, _, err = fleet(live, config_home, "devices", OUTBAND_USER=None, OUTBAND_PASSWORD=None)
    assert code == 2
    assert "not signed in" in err


def test_a_token_in_the_environment_is_used(live, config_home):
    with ConsoleApi(live.url, username="admin", password=ADMIN_PASSWORD) as api:
        token = api.create_token("env-test")["token"]
    devices = fleet_json(live, config_home, "devices", OUTBAND_TOKEN=token, OUTBAND_USER=None, OUTBAND_PASSWORD=None)
    assert len(devices) >= FLEET


def test_wrong_password_is_one_clear_line(live, config_home):
    code, _, err = fleet(live, config_home, "devices", OUTBAND_PASSWORD="not-the-password")
    assert code == 1
    assert "wrong user name or password" in err
    assert "Traceback" not in err


def test_an_unreachable_console_is_one_clear_line(config_home):
    result = CliRunner().invoke(app, ["fleet", "--url", "http://127.0.0.1:9", "devices"],
                                env={"OUTBAND_TOKEN": "obt_x", "XDG_CONFIG_HOME": str(config_home)})
    assert result.exit_code == 1
    assert "cannot reach the console at http://127.0.0.1:9" in result.stderr


def test_a_password_session_ends_with_the_client(live):
    api = ConsoleApi(live.url, username="admin", password=ADMIN_PASSWORD)
    api.me()
    cookies = dict(api._http.cookies)
    api.close()
    with httpx2.Client(base_url=live.url, cookies=cookies) as raw:
        assert raw.get("/api/auth/me").status_code == 401


# ---------------------------------------------------------------------------------------------- adding


def test_add_without_check_and_with_a_failing_check(live, config_home):
    added = fleet_json(live, config_home, "add", "spare-1", "127.0.0.1", "--no-check", "--tag", "spare",
                       "--group", "floor-9", AMT_PASSWORD="Spare!pass1")
    assert (added["name"], added["host"], added["tags"], added["group"]) == ("spare-1", "127.0.0.1", ["spare"],
                                                                          "floor-9")
    assert added["reachable"] is None

    engine = f"{prefix(live)}.1"
    code, _, err = fleet(live, config_home, "add", "wrong-pass", engine, AMT_PASSWORD="Wrong!pass1")
    assert code == 1
    assert "auth_refused" in err
    assert not fleet_json(live, config_home, "devices", "--search", "wrong-pass")

    code, _, err = fleet(live, config_home, "add", "no-pass", engine)
    assert code == 2
    assert "AMT_PASSWORD" in err


def test_import_reports_each_row(live, config_home, tmp_path):
    csv = tmp_path / "devices.csv"
    csv.write_text("name,host,tags\nimported-1,10.9.9.1,lab2\nimported-2,not a host!,lab2\n")
    code, out, err = fleet(live, config_home, "import", str(csv), "--json", AMT_PASSWORD="Import!pass1")
    assert code == 1, err
    report = json.loads(out)
    assert (report["added"], report["failed"]) == (1, 1)
    assert [(row["name"], row["status"]) for row in report["rows"]] == [("imported-1", "added"),
                                                                        ("imported-2", "failed")]
    assert [d["name"] for d in fleet_json(live, config_home, "devices", "--tag", "lab2")] == ["imported-1"]


def test_discover_finds_the_engines_and_knows_they_are_registered(live, config_home):
    scan = fleet_json(live, config_home, "discover", f"{prefix(live)}.0/29")
    assert scan["status"] == "succeeded"
    found = {(end["address"], end["tls"]) for end in scan["found"]}
    expected = {f"{prefix(live)}.{n}" for n in range(1, FLEET + 1)}
    assert found == {(address, tls) for address in expected for tls in (False, True)}
    known = {d["host"]: d["id"] for d in fleet_json(live, config_home, "devices", "--tag", "lab")}
    assert {end["device_id"] for end in scan["found"] if not end["tls"]} == {known[a] for a in expected}


def test_an_operation_needs_a_target(live, config_home):
    code, _, err = fleet(live, config_home, "power", "status")
    assert code == 2
    assert "--all" in err


# ---------------------------------------------------------------------------------------------- jobs


def power_states(live, config_home, *names: str) -> dict[str, int]:
    return {d["name"]: d["power_state"] for d in fleet_json(live, config_home, "devices", "--search", "sim-")
            if d["name"] in names}


def test_power_on_and_off_print_one_result_per_device_and_update_the_state(live, config_home):
    results = fleet_json(live, config_home, "power", "on", "sim-001", "sim-002")
    assert sorted(r["device"] for r in results) == ["sim-001", "sim-002"]
    assert {(r["status"], r["result"]["action"], r["error"]) for r in results} == {("succeeded", "on", None)}
    assert power_states(live, config_home, "sim-001", "sim-002") == {"sim-001": 2, "sim-002": 2}

    status = fleet_json(live, config_home, "power", "status", "--tag", "lab")
    by_device = {r["device"]: r for r in status}
    assert sorted(by_device) == ["sim-001", "sim-002", "sim-003", "sim-004", "sim-005"]
    assert {name: r["result"]["power_state"] for name, r in by_device.items()} == {
        "sim-001": 2, "sim-002": 2, "sim-003": 8, "sim-004": 8, "sim-005": 8}
    assert all(r["result"]["power"] in ("on", "off_soft") for r in status)

    off = fleet_json(live, config_home, "power", "off", "--group", "floor-1", "--tag", "kiosk")
    assert sorted(r["device"] for r in off) == ["sim-001", "sim-002", "sim-003", "sim-005"]
    assert all(r["status"] == "succeeded" for r in off)
    assert set(power_states(live, config_home, "sim-001", "sim-002").values()) == {8}


def test_a_failed_device_is_reported_and_fails_the_command(live, config_home):
    fleet_json(live, config_home, "add", "wrong-credentials", f"{prefix(live)}.3", "--no-check", "--tag", "broken",
               AMT_PASSWORD="Wrong!pass1")
    code, out, err = fleet(live, config_home, "power", "status", "--tag", "broken", "--json")
    assert code == 1, err
    (result,) = json.loads(out)
    assert (result["device"], result["status"], result["reason"]) == ("wrong-credentials", "failed", "auth_refused")

    code, out, err = fleet(live, config_home, "power", "status", "--tag", "broken")
    assert code == 1
    assert "auth_refused" in out


def test_unknown_devices_start_nothing(live, config_home):
    before = fleet_json(live, config_home, "jobs")
    code, _, err = fleet(live, config_home, "power", "on", "no-such-pc")
    assert code == 1
    assert "no such device 'no-such-pc'" in err
    assert fleet_json(live, config_home, "jobs") == before


def test_jobs_list_show_and_no_wait(live, config_home):
    started = fleet_json(live, config_home, "inventory", "sim-004", "--no-wait")
    assert (started["operation"], started["total"]) == ("inventory", 1)
    shown = fleet_json(live, config_home, "jobs", str(started["id"]), "--wait")
    assert shown == [{"device_id": shown[0]["device_id"], "device": "sim-004", "status": "succeeded",
                      "result": shown[0]["result"], "error": None, "reason": None}]
    assert shown[0]["result"]["hostname"] == "outband-sim-3"
    listed = fleet_json(live, config_home, "jobs")
    assert listed[0]["id"] == started["id"]
    assert listed[0]["status"] == "succeeded"

    code, _, err = fleet(live, config_home, "jobs", str(started["id"]), "--cancel")
    assert code == 1
    assert "the job is succeeded" in err


def test_boot_sets_the_next_boot_device(live, config_home):
    results = fleet_json(live, config_home, "boot", "pxe", "sim-005", "--then", "auto")
    assert [(r["device"], r["status"]) for r in results] == [("sim-005", "succeeded")]
    assert results[0]["result"]["device"] == "pxe"
    assert results[0]["result"]["power"]["action"] in ("on", "reset")


def test_add_a_cira_device_by_uuid(live, config_home):
    device_uuid = "5e1f0c3a-9b7d-4c2e-8a61-0d4b7f3e2a19"
    added = fleet_json(live, config_home, "add", "branch-laptop", "--cira", device_uuid.upper(), "--cira-user",
                       "branch-7", AMT_PASSWORD="Branch!pass1", OUTBAND_CIRA_PASSWORD="Cira!branch-7")
    assert (added["transport"], added["host"], added["reachable"]) == ("cira", device_uuid, False)
    code, _, err = fleet(live, config_home, "add", "nowhere", AMT_PASSWORD="Branch!pass1")
    assert code == 2
    assert "--cira UUID" in err


def test_the_progress_line_says_how_many_devices_a_job_waits_for() -> None:
    job = {"total": 3, "counts": {"succeeded": 1, "pending": 2}, "waiting_offline": 2}
    assert waiting_note(job) == " (waiting for 2 CIRA devices to dial in)"
    assert waiting_note({**job, "waiting_offline": 1}) == " (waiting for 1 CIRA device to dial in)"
    assert waiting_note({**job, "waiting_offline": 0}) == ""
