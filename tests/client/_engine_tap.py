"""What an engine's Digest verifier judged: every login it saw, in its order, and the ones it counted as failures."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from outband.engine.core import Engine
from outband.proto.digest import AuthResult, Reason

_NC = re.compile(r'nc="?([0-9a-fA-F]{8})')


@dataclass
class EngineTap:
    reasons: list[Reason] = field(default_factory=list)
    """One per request that needed a login (Identify does not), in the order the engine judged them."""
    nonce_counts: list[int] = field(default_factory=list)
    """The nc of every request that carried an Authorization header, in the same order."""
    failures: list[Reason] = field(default_factory=list)
    """Logins the engine counted towards its anti-hammering lockout (what it audits as 1605)."""

    @property
    def challenged(self) -> int:
        """Requests that went out without credentials and so only earned a challenge."""
        return self.reasons.count(Reason.MISSING)


def tap(engine: Engine) -> EngineTap:
    """Start recording what ``engine`` judges (wraps its verifier's ``verify``; keep the verifier object)."""
    seen = EngineTap()
    verify = engine.verifier.verify

    def recording(method: str, authorization: str | None, body: bytes = b"", **kwargs: object) -> AuthResult:
        result = verify(method, authorization, body, **kwargs)  # type: ignore[arg-type]
        seen.reasons.append(result.reason)
        match = _NC.search(authorization or "")
        if match:
            seen.nonce_counts.append(int(match.group(1), 16))
        return result

    engine.verifier.verify = recording  # type: ignore[method-assign]
    engine.add_login_failure_listener(lambda result, peer: seen.failures.append(result.reason))
    return seen
