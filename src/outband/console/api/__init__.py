"""The REST API (FastAPI): ``create_app(runtime)`` in :mod:`.app`; one router per area in :mod:`.routes`."""
