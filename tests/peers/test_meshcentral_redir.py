"""MeshCentral's bundled AMT redirection stack (npm meshcentral, amt/amt-redir-mesh.js) opens SOL on the engine
with its digest login, headless (see meshcentral_redir.js), over TCP and over TLS.  The stack dials 16994/16995
whatever it is told, so the engine listens on those ports of an address of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.peers._peerkit import PEERS_DIR, assert_steps_ok
from tests.redir._kit import audit_ids, eventually, redirection_engine

from outband.proto.redir.session import AuthType
from outband.testing.peers import peer_password, run_node_json

pytestmark = pytest.mark.peer

SCRIPT = PEERS_DIR / "meshcentral_redir.js"


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
async def test_meshcentral_opens_sol_with_digest_and_exchanges_data(tmp_path: Path, tls: bool) -> None:
    async with redirection_engine(password=peer_password(), tls_dir=tmp_path if tls else None,
                                  standard_ports=True) as r:
        report: dict[str, Any] = await run_node_json(
            SCRIPT, ["--host", r.host, *(["--tls"] if tls else [])],
            env={"PEER_PASSWORD": r.password}, kill_after=40)
        assert_steps_ok(report["results"], peer="MeshCentral redirection")
        # The query first, then digest with qop (type 4) for the opening request and the answer.
        assert report["authTypes"] == [AuthType.QUERY, AuthType.DIGEST, AuthType.DIGEST]
        assert "uname -a\r\nLinux outband-sim" in report["output"]
        await eventually(lambda: 1805 in audit_ids(r))
        assert audit_ids(r)[-2:] == [1804, 1805]
