"""Open redirection sessions (SOL, IDE-R/storage, KVM) of an engine, as the WS-MAN services need to see them.

The redirection listeners (16994/16995 and port 5900) own the sessions; they report each one here when it opens
and when it closes, and hand over a ``terminate`` callback.  The WS-MAN side reads this registry to answer
``TerminateSession``, to close sessions of a feature that gets disabled, to report a KVM session in
``CIM_KVMRedirectionSAP.EnabledState`` and to keep user consent alive: AMT drops consent after a period with
no session open on any redirection port (IRG ``userconsentgeneralflow.htm``).  Sessions are RAM state (an ME
reset ends them), so the registry lives beside the engine, not in the state store.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .runtimestate import runtime

if TYPE_CHECKING:
    from ..core import Engine


class SessionKind(enum.StrEnum):
    SOL = "sol"
    IDER = "ider"
    """IDE-R or USB-R storage redirection."""
    KVM = "kvm"


CONSENT_SESSIONS: frozenset[SessionKind] = frozenset({SessionKind.IDER, SessionKind.KVM})
"""Sessions that run on user consent: while one is open, IPS_OptInService reports OptInState 4 (In Session)."""


@dataclass(slots=True)
class _Session:
    kind: SessionKind
    terminate: Callable[[], None] | None
    vnc_port: bool = False
    """A KVM session of a viewer on port 5900 (not the redirection port)."""


@dataclass(slots=True)
class _Registry:
    open: dict[int, _Session] = field(default_factory=dict)
    tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    last_closed: float | None = None


def _registry(engine: Engine) -> _Registry:
    return runtime(engine, "sessions", _Registry)


def session_opened(engine: Engine, kind: SessionKind, terminate: Callable[[], None] | None = None, *,
                   vnc_port: bool = False) -> int:
    """Record an open session; the token closes it.  ``terminate`` ends it from the WS-MAN side."""
    registry = _registry(engine)
    token = next(registry.tokens)
    registry.open[token] = _Session(SessionKind(kind), terminate, vnc_port)
    return token


def session_closed(engine: Engine, token: int) -> None:
    """Record that a session ended (calling it twice is harmless)."""
    registry = _registry(engine)
    if registry.open.pop(token, None) is not None:
        registry.last_closed = engine.monotonic()


def open_sessions(engine: Engine) -> list[SessionKind]:
    """The kinds of the sessions open now, one entry per session."""
    return [s.kind for s in _registry(engine).open.values()]


def last_session_closed(engine: Engine) -> float | None:
    """``engine.monotonic()`` time the last session ended, None if none has yet."""
    return _registry(engine).last_closed


def terminate_sessions(engine: Engine, kinds: Collection[SessionKind], *, vnc_port_only: bool = False) -> int:
    """End every open session of ``kinds`` (only port 5900's with ``vnc_port_only``); returns how many."""
    registry = _registry(engine)
    doomed = [(token, s) for token, s in registry.open.items()
              if s.kind in kinds and (s.vnc_port or not vnc_port_only)]
    for token, session in doomed:
        if session.terminate is not None:
            session.terminate()
        session_closed(engine, token)
    return len(doomed)
