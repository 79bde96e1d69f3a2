"""``outband console``: run the fleet console (REST API on --listen), and look after its secret key."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from ..console.config import Settings, load_settings
from ..console.db.database import Database
from ..console.db.migrate import revision_of, upgrade
from ..console.jobs.services import job_services
from ..console.logs import configure_logging
from ..console.mps import MpsService, MpsSettings
from ..console.mps.nodes import NodeRelay
from ..console.runtime import Runtime, open_runtime
from ..console.secrets import SecretKeyError, generate_key, load_box, rotate_credentials
from ..console.server import ConsoleServer

app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
err = Console(stderr=True, soft_wrap=True)

ListenOption = Annotated[str | None, typer.Option(
    "--listen", help="HOST:PORT for the API and web UI (env OUTBAND_LISTEN; default 127.0.0.1:8080).")]
DbOption = Annotated[str | None, typer.Option(
    "--db", help="SQLAlchemy URL (sqlite:///console.db, postgresql://user@host/db) (env OUTBAND_DB; default: "
    "console.db in the data directory).")]
DataDirOption = Annotated[Path | None, typer.Option(
    "--data-dir", help="Holds the SQLite file and the generated secret key (env OUTBAND_DATA_DIR; default "
    "./outband-console).")]
ConfigOption = Annotated[Path | None, typer.Option(
    "--config", envvar="OUTBAND_CONFIG", help="TOML file of settings (keys as the OUTBAND_* names, lower case).")]
MpsListenOption = Annotated[str | None, typer.Option(
    "--mps-listen", help="HOST:PORT where CIRA devices dial in, or 'off' (env OUTBAND_MPS_LISTEN; default "
    "127.0.0.1:4433; more in OUTBAND_MPS_*).")]


def settings_from(listen: str | None = None, db: str | None = None, data_dir: Path | None = None,
                  config: Path | None = None) -> Settings:
    """Options given on the command line win over the environment, which wins over the file."""
    try:
        return load_settings(config, listen=listen, db=db, data_dir=data_dir)
    except (ValidationError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def mps_settings_from(listen: str | None) -> MpsSettings:
    """The MPS's settings: ``--mps-listen`` over the OUTBAND_MPS_* environment."""
    try:
        return MpsSettings() if listen is None else MpsSettings(mps_listen=listen)
    except (ValidationError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


@app.callback()
def console(
    ctx: typer.Context,
    listen: ListenOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    mps_listen: MpsListenOption = None,
) -> None:
    """Run the console: REST API with OpenAPI docs at /api/docs, the MPS CIRA devices dial (TLS, 4433), SQLite
    (or PostgreSQL) database, migrations on start.  The first start creates the account admin with
    OUTBAND_ADMIN_PASSWORD, or prints a generated password once.  Device credentials are encrypted with
    OUTBAND_SECRET_KEY / OUTBAND_SECRET_KEY_FILE (else a key generated in the data directory: back it up with
    the database)."""
    ctx.obj = (listen, db, data_dir, config)
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_from(listen, db, data_dir, config)
    mps = mps_settings_from(mps_listen)
    configure_logging(settings.log_format, settings.log_level)
    try:
        asyncio.run(serve(settings, mps))
    except (OSError, SecretKeyError, ValueError, RuntimeError) as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        pass


async def serve(settings: Settings, mps: MpsSettings) -> None:
    runtime = await open_runtime(settings)
    try:
        for service in job_services():  # the job runner (resumes interrupted jobs), scheduler, health poller
            await runtime.start_service(service)
        if mps.enabled:
            await runtime.start_service(MpsService(mps))
        else:  # no tunnels here, but CIRA devices are still reached through the MPS nodes that hold them
            runtime.connector.cira = NodeRelay(runtime.db, runtime.box, None)
        host, port = settings.listen_address
        server = ConsoleServer(runtime, host, port)
        await server.start()
        server.stop_on_signals()
        announce(runtime, server.url)
        await server.wait()
    finally:
        await runtime.close()


def announce(runtime: Runtime, url: str) -> None:
    err.print(f"outband console: {url}  (API docs {url}/api/docs)")
    err.print(f"  database: {runtime.db.engine.url.render_as_string(hide_password=True)}")
    where = runtime.key_file or "OUTBAND_SECRET_KEY"
    err.print(f"  secret key: {where} (id {runtime.box.key_id}, {runtime.box.key_count} key(s))")
    mps = runtime.service(MpsService.name)
    if isinstance(mps, MpsService):
        login = "shared login set" if mps.settings.shared_login else "no shared login (per-device credentials only)"
        err.print(f"  MPS (CIRA): {mps.host}:{mps.port}, certificate {mps.cert_file} (SHA-256 {mps.fingerprint}); "
                  f"{login}")
    if runtime.generated_admin_password is not None:
        err.print(f"  [bold]account admin, password (shown once, keep it):[/bold] {runtime.generated_admin_password}")
        err.print("  (set OUTBAND_ADMIN_PASSWORD before the first start to choose it yourself)")


def _options(ctx: typer.Context) -> Settings:
    listen, db, data_dir, config = ctx.obj
    return settings_from(listen, db, data_dir, config)


@app.command("generate-key")
def generate_key_command() -> None:
    """Print a new secret key.  To rotate: put it first in OUTBAND_SECRET_KEY (or the key file), keep the old
    one after it, run `outband console rotate-key`, then remove the old one."""
    typer.echo(generate_key())


@app.command("rotate-key")
def rotate_key_command(ctx: typer.Context) -> None:
    """Re-encrypt every stored device credential under the current (first) secret key."""
    settings = _options(ctx)

    async def rotate() -> None:
        db = Database(settings.database_url)
        try:
            await upgrade(db)
            box, _ = load_box(settings, may_generate=False)
            report = await rotate_credentials(db, box)
        finally:
            await db.close()
        err.print(f"re-encrypted {report.rotated} credential(s) under key {box.key_id}")
        if report.failed:
            err.print(f"[red]{len(report.failed)} credential(s) no configured key decrypts[/red] (devices "
                      f"{', '.join(map(str, report.failed[:20]))}{' ...' if len(report.failed) > 20 else ''})")
            raise typer.Exit(1)

    try:
        asyncio.run(rotate())
    except (OSError, SecretKeyError, ValueError) as exc:
        raise _fail(exc) from None


@app.command("migrate")
def migrate_command(ctx: typer.Context) -> None:
    """Bring the database schema up to date (the console also does this on every start)."""
    settings = _options(ctx)

    async def migrate() -> str | None:
        db = Database(settings.database_url)
        try:
            await upgrade(db)
            return await revision_of(db)
        finally:
            await db.close()

    try:
        revision = asyncio.run(migrate())
    except (OSError, ValueError) as exc:
        raise _fail(exc) from None
    err.print(f"database schema at revision {revision}")
