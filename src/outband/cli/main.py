"""The ``outband`` command: one sub-command group per area (``outband wsman ...``)."""

import typer

from . import console, fleet, sol, up, wsman
from .engine import engine_command

app = typer.Typer(no_args_is_help=True, help="Out-of-band management with Intel AMT's protocols.")
app.add_typer(wsman.app, name="wsman")
app.add_typer(console.app, name="console")
app.add_typer(fleet.app, name="fleet")
app.command("engine", epilog=None)(engine_command)
app.command("sol", epilog=sol.EPILOG)(sol.sol_command)
app.command("up")(up.up_command)


def main() -> None:
    """Entry point of the ``outband`` console script."""
    app()


from . import ider, kvm  # noqa: E402  (the redirection commands, registered after the others)

app.command("kvm", epilog=kvm.EXAMPLES)(kvm.kvm)
app.command("ider", epilog=ider.EXAMPLES)(ider.ider)
