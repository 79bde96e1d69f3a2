"""The console: the managing half of outband, one service for a fleet of AMT devices and outband engines.

Layout (imports point down the list, never up)::

    api/        FastAPI app (create_app), one router per area, the permission/audit dependency
    runtime.py  one running console: settings, database, secret box, metrics, device connector, services
    devices/    device repository (filters, selections, targets), connection checks, discovery, CSV import
    audit.py    the console's own audit trail
    auth.py     accounts, sessions, API tokens, lockout        permissions.py  the role -> permission table
    secrets.py  credentials at rest (MultiFernet), rotation    logs.py / metrics.py  observability
    db/         SQLAlchemy models, short transactions, Alembic migrations run on start
    config.py   settings (OUTBAND_* environment, TOML file)   server.py  uvicorn, embeddable
"""
