"""``openaml user create/list/show/delete/whoami``: workspace users with Azure ML's built-in roles."""

from __future__ import annotations

from typing import Annotated

import typer

from openaml.cli._common import NameOpt, OutputOpt, WorkspaceOpt, client, handle_errors
from openaml.cli._output import info, render

app = typer.Typer(help="Workspace users and roles (Reader, 'AzureML Data Scientist', Contributor, Owner).",
                  no_args_is_help=True)

RoleOpt = Annotated[str, typer.Option("--role", "-r", help="Reader, 'AzureML Data Scientist' (or DataScientist), "
                                                            "Contributor or Owner.")]


@app.command("create")
@handle_errors
def create(name: NameOpt, role: RoleOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Create a user and print its token (shown this once; the server keeps only a hash).

    The user then works with ``OPENAML_TOKEN=<token>`` (or ``MLClient(token=...)``).
    """
    user = client(workspace).users.create(name, role)
    render(user, output)
    info(f"user {user.name} ({user.role}) created: keep its token now, it is not shown again")


@app.command("list")
@handle_errors
def list_(workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
    render(client(workspace).users.list(), output, columns=["name", "role", "created_by", "created_at"])


@app.command("show")
@handle_errors
def show(name: NameOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    render(client(workspace).users.get(name), output)


@app.command("delete")
@handle_errors
def delete(name: NameOpt, yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
           workspace: WorkspaceOpt = None) -> None:
    """Delete a user: its token stops working at once; jobs it submitted run on until they end (as in Azure ML)."""
    client(workspace).users.delete(name)
    info(f"deleted user {name}")


@app.command("whoami")
@handle_errors
def whoami(workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Who the server takes you for (name, role, kind)."""
    render(client(workspace).users.whoami(), output)
