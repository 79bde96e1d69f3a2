"""The console's MPS: CIRA devices dial in, log in, and the console reaches them through their tunnels.

:class:`MpsService` (a runtime service, started by ``outband console`` and ``outband up``) listens, checks
logins and keeps presence in the database; its :class:`TunnelRegistry` is the device connector's route to
CIRA devices.  Settings: :class:`MpsSettings` (``OUTBAND_MPS_*``).
"""

from .presence import PresenceWriter
from .registry import TunnelRegistry
from .service import LoginRefused, MpsService
from .settings import DEFAULT_MPS_LISTEN, MpsSettings

__all__ = [
    "DEFAULT_MPS_LISTEN",
    "LoginRefused",
    "MpsService",
    "MpsSettings",
    "PresenceWriter",
    "TunnelRegistry",
]
