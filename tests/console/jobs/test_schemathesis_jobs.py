"""schemathesis over the operations, jobs and schedules part of the OpenAPI document, on a live console with a
few simulated engines registered (so generated selections can name real devices and start real jobs): no
generated request, valid or mutated, may get a server error."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from schemathesis.generation import GenerationMode
from tests.cli._live import ADMIN_PASSWORD, LiveConsole, console_settings
from tests.console.jobs._kit import jobs_app
from tests.console.test_schemathesis import exercise

from outband.client.console_api import ConsoleApi
from outband.console import server as server_module

pytestmark = pytest.mark.slow
PATHS = ("/api/operations", "/api/jobs", "/api/schedules")


def test_jobs_api_never_answers_with_a_server_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "create_app", jobs_app)  # until create_app serves the jobs routers itself
    with LiveConsole(console_settings(tmp_path / "console"), engines=3) as live:
        with ConsoleApi(live.url, username="admin", password=ADMIN_PASSWORD) as api:
            token = api.create_token("schemathesis")["token"]
            user_id = api.me()["user"]["id"]
        schema = schemathesis.openapi.from_url(f"{live.url}/api/openapi.json")
        headers = {"Authorization": f"Bearer {token}"}
        exercised: list[str] = []
        errors: list[str] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            if not operation.path.startswith(PATHS):
                continue
            exercised.append(operation.label)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                errors += exercise(operation, live.url, headers, user_id, mode)
    assert len(exercised) >= 15, exercised
    assert not errors, "\n\n".join(errors)
