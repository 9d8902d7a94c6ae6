"""Options shared by every command, client creation, and error handling."""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

import typer

from openaml.cli._output import fail
from openaml.errors import OpenAMLError

__all__ = ["WorkspaceOpt", "OutputOpt", "FileOpt", "NameOpt", "VersionOpt", "LabelOpt", "SetOpt",
           "client", "handle_errors", "show_warnings"]

WorkspaceOpt = Annotated[str | None, typer.Option("--workspace", "-w", help="Workspace folder, name or http URL.",
                                                  envvar=None)]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="json, yaml, table or tsv.")]
FileOpt = Annotated[str, typer.Option("--file", "-f", help="YAML file.")]
NameOpt = Annotated[str, typer.Option("--name", "-n", help="Name.")]
VersionOpt = Annotated[str | None, typer.Option("--version", "-v", help="Version.")]
LabelOpt = Annotated[str | None, typer.Option("--label", "-l", help="Label (only 'latest').")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a field: key.path=value (repeatable).")]

F = TypeVar("F", bound=Callable[..., Any])


def client(workspace: str | None) -> Any:
    """An MLClient for the CLI (the CLI calls the SDK only)."""
    from openaml.sdk import MLClient

    return MLClient(workspace=workspace)


@contextlib.contextmanager
def show_warnings() -> Iterator[None]:
    """Print the SDK's UserWarnings raised inside the block as one ``WARNING:`` line each on stderr."""
    from openaml.cli._output import info

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, UserWarning):
            import rich.markup  # only when there is a warning to print

            info(f"[yellow]WARNING:[/] {rich.markup.escape(str(w.message))}")
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def handle_errors(fn: F) -> F:
    """Turn openaml errors into a message on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OpenAMLError as exc:
            fail(exc.message)
        except KeyboardInterrupt:
            fail("interrupted", code=130)
        except Exception as exc:  # noqa: BLE001 - only pydantic's, re-raised otherwise
            # an entity built from flags (--set, --input-type ...) that pydantic refuses: the field and
            # value in one line, as for a YAML file, not a traceback (batch review minors)
            if type(exc).__module__.startswith("pydantic") and type(exc).__name__ == "ValidationError":
                from openaml.entities._base import validation_error_from_pydantic

                fail(validation_error_from_pydantic(exc, source=None, lines=None,  # type: ignore[arg-type]
                                                    kind="the command's values").message)
            raise

    return wrapper  # type: ignore[return-value]
