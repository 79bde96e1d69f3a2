"""The ``outband`` command."""

import typer

app = typer.Typer(no_args_is_help=True, help="Out-of-band management with Intel AMT's protocols.")


def main() -> None:
    """Entry point of the ``outband`` console script."""
    app()
