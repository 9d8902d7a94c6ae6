"""The ``openaml`` command line: ``openaml <noun> <verb>`` mirroring ``az ml``.

One Typer app per noun, composed here. The CLI calls the SDK only.
"""

from __future__ import annotations

import typer

__all__ = ["app", "build_app", "lean_process", "main"]

# noun -> module under openaml.cli; each module holds one Typer app (imported only when its noun runs)
NOUNS: dict[str, str] = {
    "workspace": "_workspace", "server": "_server", "compute": "_compute", "datastore": "_datastore",
    "data": "_data", "environment": "_environment", "model": "_model", "job": "_job",
    "component": "_component", "schedule": "_schedule", "online-endpoint": "_online_endpoint",
    "online-deployment": "_online_deployment", "batch-endpoint": "_batch_endpoint",
    "batch-deployment": "_batch_deployment", "user": "_user", "demo": "_demo",
}


def build_app(only: str | None = None) -> typer.Typer:
    """The CLI app with every noun, or with ``only`` that noun (a command imports and builds what it runs)."""
    import importlib

    root = typer.Typer(name="openaml", help="Self-hosted Azure Machine Learning. Every command takes --query <JMESPath> (as az does).",
                       no_args_is_help=True,
                       add_completion=False, pretty_exceptions_enable=False)
    for noun, module in NOUNS.items():
        if only is None or noun == only:
            root.add_typer(importlib.import_module(f"openaml.cli.{module}").app, name=noun)
    return root


def __getattr__(name: str) -> typer.Typer:  # ``from openaml.cli import app``: the full app, built once
    if name == "app":
        full = build_app()
        globals()["app"] = full
        return full
    raise AttributeError(f"module 'openaml.cli' has no attribute {name!r}")


def lean_process(noun: str | None) -> None:
    """Spare a short CLI process the start-up costs it does not need (called by :func:`main`)."""
    import gc
    import os
    import sys

    if noun not in ("server", "demo"):
        # a short command creates ~40k objects that live until it exits (the modules and classes of
        # Typer, pydantic, httpx): the collector's passes over them are wasted work (~5% of a `job
        # list`). A larger first threshold collects rarely; a long `job stream` still collects.
        # Not for the commands that run a server in this process.
        gc.set_threshold(100_000, 10, 10)
    if noun not in (None, "server", "demo") and "PYDANTIC_DISABLE_PLUGINS" not in os.environ:
        # pydantic looks for plugins in every installed distribution's entry points on its first
        # model (~0.1 s); the CLI's models need none. Not for commands that run a server (its jobs
        # inherit its environment); a server started in the background from here drops it (_connect).
        os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
        os.environ["OPENAML_CLI_PYDANTIC_PLUGINS_OFF"] = "1"
    # httpx's own command line (httpx._main) imports click, rich and pygments (~0.05-0.1 s) when
    # httpx is imported; this process never runs it, so httpx takes the fallback it has for a missing CLI extra
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def main() -> None:
    """Run the CLI, then leave without the interpreter's teardown (~0.2 s of a short command)."""
    import os
    import sys

    from openaml.cli._output import take_query

    argv = take_query(sys.argv[1:])  # --query (JMESPath) is global, as in az
    sys.argv[1:] = argv
    noun = argv[0] if argv and argv[0] in NOUNS else None
    lean_process(noun)
    try:
        build_app(noun)()
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
            code = 1
        else:
            code = int(exc.code or 0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
