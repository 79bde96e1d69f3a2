"""``outband engine --cira ...``: the command line dials an MPS; bad CIRA options are refused before starting."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from typer.testing import CliRunner

from outband.cli.main import app
from outband.testing.mps import LoopbackMps

from ._kit import MPS_PASSWORD, MPS_USER

OUTBAND = str(Path(sys.executable).parent / "outband")


async def test_outband_engine_keeps_a_tunnel_to_the_mps_given_on_the_command_line(tmp_path: Path) -> None:
    async with LoopbackMps({MPS_USER: MPS_PASSWORD}, tls_dir=tmp_path) as mps:
        env = {**os.environ, "AMT_PASSWORD": "Cli!Passw0rd1", "CIRA_PASSWORD": MPS_PASSWORD}
        process = await asyncio.create_subprocess_exec(
            OUTBAND, "engine", "--http-port", "0", "--tls-port", "0", "--redir-port", "0", "--redir-tls-port", "0",
            "--state-dir", str(tmp_path / "state"), "--cira", f"127.0.0.1:{mps.port}", "--cira-user", MPS_USER,
            "--cira-ca", str(mps.cert_file), env=env, stderr=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(20):
                device = await mps.wait_device(ports=(16992,))
            assert list(device.ports) == [16992]  # the only listener this engine runs
            async with device.amt_client("admin", "Cli!Passw0rd1") as amt:
                assert (await amt.get("AMT_GeneralSettings"))["HostName"] == "outband-sim"
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert b"CIRA: keeping a tunnel to 127.0.0.1" in stderr
        async with asyncio.timeout(10):
            await mps.wait_until(lambda m: not m.connected())  # SIGTERM stopped the engine and its tunnel


def test_bad_cira_options_are_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["engine", "--state-dir", str(tmp_path), "--cira", "mps.example:4433"]
    result = runner.invoke(app, [*base, "--cira-user", "u"], env={"CIRA_PASSWORD": ""})
    assert result.exit_code == 2
    assert "--cira-password" in result.output
    result = runner.invoke(app, [*base, "--cira-user", "u", "--cira-password", "p", "--cira-insecure",
                                 "--cira-ca", str(tmp_path)])
    assert result.exit_code == 2
    assert "exclude each other" in result.output
