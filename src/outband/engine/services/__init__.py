"""AMT services, one module per area; each exports ``service``, a :class:`~outband.engine.registry.Service`."""

from __future__ import annotations

from ..registry import Service
from . import general as general

SERVICES: tuple[Service, ...] = (general.service,)
