"""Per-engine runtime state: what AMT keeps in RAM and loses on an ME reset.

Open redirection sessions or the secret behind a displayed consent code must not outlive the process, so they
live beside the engine (keyed weakly by it) rather than in the state store, and vanish with the engine.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from ..core import Engine

T = TypeVar("T")

_RUNTIME: WeakKeyDictionary[Engine, dict[str, Any]] = WeakKeyDictionary()


def runtime(engine: Engine, key: str, factory: Callable[[], T]) -> T:
    """The engine's runtime object under ``key``, created by ``factory`` on first use."""
    slot = _RUNTIME.setdefault(engine, {})
    if key not in slot:
        slot[key] = factory()
    value: T = slot[key]
    return value


def instance_id(engine: Engine) -> str:
    """A random id of this engine object: persisted state stamped with another id was written before a restart
    (an ME reset, for AMT), so timers and consent recorded under it no longer hold."""
    return runtime(engine, "instance-id", lambda: secrets.token_hex(8))
