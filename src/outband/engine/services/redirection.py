"""(to be written)"""

from __future__ import annotations

from ..registry import Service

service = Service("redirection")
