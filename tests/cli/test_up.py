"""``outband up`` as a user runs it: a subprocess that prints where the console is and how to sign in, a CLI
that signs in with what it printed and drives the simulated fleet, and a restart on the same data directory
that finds the same fleet."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tests.cli._live import random_fleet_base
from typer.testing import CliRunner

from outband.cli.main import app

pytestmark = pytest.mark.slow

FLEET = 5
START_SECONDS = 60
URL_LINE = re.compile(r"outband console: (http://\S+)")
PASSWORD_LINE = re.compile(r"account admin, password \(shown once, keep it\): (\S+)")
ENGINES_PASSWORD_LINE = re.compile(r"the engines' admin password \(shown once; for AMT tools\): (\S+)")
NEW_AMT_PASSWORD = "Changed!pass9"


class Up:
    """A running ``outband up``; its stderr is read all along (by a thread) so it never blocks on a full pipe."""

    def __init__(self, data_dir: Path, fleet_base: str, *options: str, amt_password: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTBAND_", "AMT_"))}
        if amt_password is not None:
            env["AMT_PASSWORD"] = amt_password
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from outband.cli.main import main; main()", "up", "--simulate", str(FLEET),
             "--listen", "127.0.0.1:0", "--mps-listen", "127.0.0.1:0", "--data-dir", str(data_dir),
             "--fleet-base", fleet_base, *options],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        self.output: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(START_SECONDS):
            self.stop()
            raise AssertionError("outband up did not report ready:\n" + self.report)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line.rstrip("\n"))
            if "try:" in line:  # the last line of the start-up report
                self._ready.set()
        self._ready.set()

    @property
    def report(self) -> str:
        return "\n".join(self.output)

    @property
    def url(self) -> str:
        match = URL_LINE.search(self.report)
        assert match, self.report
        return match.group(1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        finally:
            self._reader.join(5)
            assert self.process.stderr is not None
            self.process.stderr.close()


def cli(url: str, config_home: Path, *args: str, password: str | None = None) -> tuple[int, str, str]:
    env = {"OUTBAND_URL": url, "XDG_CONFIG_HOME": str(config_home), "OUTBAND_USER": None, "OUTBAND_TOKEN": None,
           "OUTBAND_PASSWORD": password}
    result = CliRunner().invoke(app, ["fleet", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def engine_hostname(address: str, amt_password: str) -> tuple[int, str]:
    """Ask one simulated engine directly (as an AMT tool would) for its host name."""
    result = CliRunner().invoke(app, ["wsman", "get", address, "AMT_GeneralSettings", "--json"],
                                env={"AMT_PASSWORD": amt_password})
    return result.exit_code, result.stdout if result.exit_code else json.loads(result.stdout)["properties"]["HostName"]


def test_up_serves_a_registered_fleet_and_comes_back_the_same(tmp_path: Path) -> None:
    data_dir, base = tmp_path / "up", random_fleet_base()
    config_home = tmp_path / "config"
    first = Up(data_dir, base)
    try:
        report = first.report
        password = PASSWORD_LINE.search(report)
        assert password, report
        assert f"({FLEET} added now, 0 known)" in report, report
        assert f"{FLEET} of {FLEET} online" in report, report  # over CIRA, the default
        assert f"{FLEET} answered the check" in report, report
        assert f"export OUTBAND_URL={first.url}; outband fleet login" in report, report
        engines_password = ENGINES_PASSWORD_LINE.search(report)
        assert engines_password, report
        first_engine = f"{base.rsplit('.', 1)[0]}.1"
        assert engine_hostname(first_engine, engines_password.group(1)) == (0, "outband-sim-0")

        code, _, err = cli(first.url, config_home, "login", password=password.group(1))
        assert code == 0, err
        code, out, err = cli(first.url, config_home, "devices", "--json")
        assert code == 0, err
        devices = json.loads(out)
        assert [d["name"] for d in devices] == [f"sim-00{i}" for i in range(1, FLEET + 1)]
        assert all(d["reachable"] is True and isinstance(d["power_state"], int) for d in devices), devices
        assert {d["transport"] for d in devices} == {"cira"}
        assert {d["host"] for d in devices} == {f"{base.rsplit('.', 1)[0]}.{i}" for i in range(1, FLEET + 1)}

        code, out, err = cli(first.url, config_home, "power", "on", "--all", "--json")
        assert code == 0, err
        assert sorted((r["device"], r["status"]) for r in json.loads(out)) == [
            (f"sim-00{i}", "succeeded") for i in range(1, FLEET + 1)]
        code, out, err = cli(first.url, config_home, "power", "off", "sim-002", "--json")
        assert code == 0, err
        assert [(r["device"], r["result"]["action"]) for r in json.loads(out)] == [("sim-002", "off")]
        code, out, err = cli(first.url, config_home, "power", "status", "--tag", "lab", "--json")
        assert code == 0, err
        assert {r["device"]: r["result"]["power"] for r in json.loads(out)} == {
            f"sim-00{i}": "off_soft" if i == 2 else "on" for i in range(1, FLEET + 1)}
    finally:
        assert first.stop() == 0

    # the same console and fleet, now reached directly, with a new password the engines and credentials follow
    again = Up(data_dir, base, "--direct", amt_password=NEW_AMT_PASSWORD)
    try:
        report = again.report
        assert PASSWORD_LINE.search(report) is None, "the one-time password was shown twice"
        assert ENGINES_PASSWORD_LINE.search(report) is None, report
        assert engine_hostname(first_engine, NEW_AMT_PASSWORD) == (0, "outband-sim-0")
        assert f"(0 added now, {FLEET} known)" in report, report
        assert "over CIRA" not in report, report
        assert f"{FLEET} answered the check" in report, report
        code, _, err = cli(again.url, config_home, "login", password=password.group(1))
        assert code == 0, err
        code, out, err = cli(again.url, config_home, "devices", "--json")
        assert code == 0, err
        devices = json.loads(out)
        assert len(devices) == FLEET
        assert {d["transport"] for d in devices} == {"direct"}
        assert all(d["reachable"] is True for d in devices), devices
    finally:
        assert again.stop() == 0
