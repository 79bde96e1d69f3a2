"""The engine's redirection listener (16994/16995): SOL, IDE-R and KVM, each a kind plugged into it.

To add a kind, write a :class:`~outband.engine.redirection.kinds.KindHandler` and list it in
:func:`default_handlers`; the listener (``host.py``) gives it admission, audit and bookkeeping for free.
"""

from __future__ import annotations

from ...proto.redir.frames import SessionKind
from .host import RedirectionListener
from .ider import IderHandler
from .kinds import KindHandler, RedirectionConfig, SessionContext
from .kvm import KvmHandler
from .sol import SolHandler


def default_handlers() -> dict[SessionKind, KindHandler]:
    """The session kinds every engine serves."""
    handlers: list[KindHandler] = [SolHandler(), IderHandler(), KvmHandler()]
    return {handler.kind: handler for handler in handlers}


__all__ = ["KindHandler", "RedirectionConfig", "RedirectionListener", "SessionContext", "default_handlers"]
