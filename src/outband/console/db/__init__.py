"""The console database: models, connections with short transactions, migrations run on start."""

from .database import Database
from .migrate import upgrade

__all__ = ["Database", "upgrade"]
