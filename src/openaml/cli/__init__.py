"""The ``openaml`` command line: ``openaml <noun> <verb>`` mirroring ``az ml``.

One Typer app per noun, composed here. The CLI calls the SDK only.
"""

from __future__ import annotations

import typer

__all__ = ["app", "main"]

app = typer.Typer(name="openaml", no_args_is_help=True,
                  help="Self-hosted Azure Machine Learning. Every command takes --query <JMESPath> (as az does).",
                  add_completion=False, pretty_exceptions_enable=False)


def _register() -> None:
    from openaml.cli import (
        _component,
        _compute,
        _data,
        _datastore,
        _demo,
        _environment,
        _job,
        _model,
        _schedule,
        _server,
        _user,
        _workspace,
    )

    app.add_typer(_workspace.app, name="workspace")
    app.add_typer(_server.app, name="server")
    app.add_typer(_compute.app, name="compute")
    app.add_typer(_datastore.app, name="datastore")
    app.add_typer(_data.app, name="data")
    app.add_typer(_environment.app, name="environment")
    app.add_typer(_model.app, name="model")
    app.add_typer(_job.app, name="job")
    app.add_typer(_component.app, name="component")
    app.add_typer(_schedule.app, name="schedule")
    from openaml.cli import _online_deployment, _online_endpoint

    app.add_typer(_online_endpoint.app, name="online-endpoint")
    app.add_typer(_online_deployment.app, name="online-deployment")
    app.add_typer(_user.app, name="user")
    app.add_typer(_demo.app, name="demo")


_register()


def main() -> None:
    """Run the CLI, then leave without the interpreter's teardown (~0.2 s of a short command)."""
    import os
    import sys

    from openaml.cli._output import take_query

    sys.argv[1:] = take_query(sys.argv[1:])  # --query (JMESPath) is global, as in az
    try:
        app()
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
