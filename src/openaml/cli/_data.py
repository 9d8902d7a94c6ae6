"""Placeholder: being written."""

import typer

app = typer.Typer(help="data", no_args_is_help=True)
