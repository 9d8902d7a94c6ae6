"""Placeholder: being written."""

import typer

app = typer.Typer(help="job", no_args_is_help=True)
