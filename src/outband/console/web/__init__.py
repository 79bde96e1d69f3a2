"""The web UI: TypeScript sources (``src/``) built by vite into ``dist/`` (``npm ci && npm run build``, which
``scripts/setup.sh`` runs), and :mod:`.serve`, which serves the built files."""
