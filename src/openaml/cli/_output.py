"""The CLI's one output module: json (default for show), yaml, table; errors to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    console: Console
    err_console: Console

__all__ = ["render", "console", "err_console", "fail", "info", "take_query", "query_given"]


def __getattr__(name: str) -> Any:
    """``console`` / ``err_console``: rich consoles, made on first use (``-o json`` never imports rich)."""
    if name in ("console", "err_console"):
        from rich.console import Console

        value = Console(stderr=name == "err_console", highlight=False, soft_wrap=True)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'openaml.cli._output' has no attribute {name!r}")

# the JMESPath of this invocation's global --query (az's option on every command), set once by main()
_query: list[str] = []


def take_query(argv: list[str]) -> list[str]:
    """Remove ``--query EXPR`` / ``--query=EXPR`` from ``argv`` and keep EXPR for :func:`render`.

    ``az ml`` accepts ``--query`` (a JMESPath expression, https://jmespath.org) on every command;
    the CLI applies it to whatever a command prints.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--query" and i + 1 < len(argv):
            _query[:] = [argv[i + 1]]
            i += 2
            continue
        if a.startswith("--query="):
            _query[:] = [a.split("=", 1)[1]]
        else:
            out.append(a)
        i += 1
    return out


def query_given() -> bool:
    """Whether this invocation has a global ``--query`` (then :func:`render` prints what it selects)."""
    return bool(_query)


def _apply_query(data: Any) -> Any:
    if not _query:
        return data
    import jmespath
    import jmespath.exceptions

    try:
        return jmespath.search(_query[0], json.loads(json.dumps(data, default=str)))
    except jmespath.exceptions.JMESPathError as exc:
        fail(f"--query {_query[0]!r} is not a valid JMESPath expression: {exc}")


def _plain(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, list):
        return [_plain(x) for x in obj]
    return obj


def render(obj: Any, output: str = "json", columns: Sequence[str] | None = None) -> None:
    """Print ``obj`` as json, yaml, tsv or a table (``columns`` pick the table's columns), after the
    global ``--query`` when one was given. Non-ASCII text is printed as itself, as ``az`` does."""
    data = _plain(obj)
    if _query:
        data = _apply_query(data)
        columns = None
        if output == "table" and not isinstance(data, (list, dict)):
            output = "tsv"
    if output == "json":
        sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    elif output == "yaml":
        from openaml._yaml import dump_yaml

        sys.stdout.write(dump_yaml(json.loads(json.dumps(data, default=str))))
    elif output == "tsv":
        rows = data if isinstance(data, list) else [data]
        for row in rows:
            if isinstance(row, dict):
                cols = columns or list(row)
                sys.stdout.write("\t".join(_cell(row.get(c)) for c in cols) + "\n")
            elif isinstance(row, list):
                sys.stdout.write("\t".join(_cell(c) for c in row) + "\n")
            else:
                sys.stdout.write(_cell(row) + "\n")
    elif output == "table":
        from rich.table import Table

        console = __getattr__("console")
        rows = data if isinstance(data, list) else [data]
        if not rows:
            console.print("(none)")
            return
        cols = list(columns or (rows[0].keys() if isinstance(rows[0], dict) else ["value"]))
        table = Table(show_header=True, header_style="bold")
        for c in cols:
            if c == "name":  # an identifier to copy into the next command: never cut (others shrink or wrap)
                width = max([len(c)] + [len(_cell(r.get(c))) for r in rows if isinstance(r, dict)])
                table.add_column(c, no_wrap=True, min_width=width)
            else:
                table.add_column(c)
        for row in rows:
            table.add_row(*(_cell(row.get(c)) if isinstance(row, dict) else _cell(row) for c in cols))
        console.print(table)
    else:
        fail(f"--output {output!r} is invalid; use json, yaml, table or tsv")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str, ensure_ascii=False)
    return str(v)


def info(msg: str) -> None:
    __getattr__("err_console").print(msg)


def fail(msg: str, code: int = 1) -> None:
    # the message is plain text: brackets in it (regex patterns, [1, 10]) are not rich markup
    import rich.markup

    __getattr__("err_console").print(f"[bold red]ERROR:[/] {rich.markup.escape(msg)}", markup=True, highlight=False)
    raise typer.Exit(code)
