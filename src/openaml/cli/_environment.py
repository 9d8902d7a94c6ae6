"""Placeholder: being written."""

import typer

app = typer.Typer(help="environment", no_args_is_help=True)
