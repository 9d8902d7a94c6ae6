"""What every studio page shares: the template environment, the caller's role, the 404 page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

__all__ = ["render", "not_found", "can", "services", "duration", "fmt_time", "STATIC_DIR"]

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TERMINAL = frozenset({"Completed", "Failed", "Canceled", "NotResponding", "Paused"})

# autoescape on every template: user text (job names, tags, log lines, metric and file names) is text
_env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)


def duration(start: datetime | None, end: datetime | None) -> str:
    """``1h 02m``, ``3m 04s``, ``5.2s``; empty before the start."""
    if start is None:
        return ""
    secs = ((end or datetime.now(UTC)) - start).total_seconds()
    if secs < 60:
        return f"{secs:.1f}s"
    m, s = divmod(int(secs), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def fmt_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value or "")


_env.globals.update(duration=duration, fmt_time=fmt_time, TERMINAL=TERMINAL)


def services(request: Request) -> dict[str, Any]:
    return request.app.state.ctx.services


def can(request: Request, permission: str) -> bool:
    """Whether the caller's role holds ``permission`` (``read``, ``write``, ``infra``): the studio
    offers an action only then; the API refuses it anyway (server/_auth.py)."""
    from openaml.server._auth import ROLE_PERMISSIONS

    principal = getattr(request.state, "principal", None)
    if principal is None:
        return False
    return permission in ROLE_PERMISSIONS.get(principal.role, frozenset())


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``templates/<template>`` with the page context (who is signed in, what they may do)."""
    principal = getattr(request.state, "principal", None)
    ctx = request.app.state.ctx
    html = _env.get_template(template).render(
        request=request, workspace=ctx.workspace_name, principal=principal,
        can_write=can(request, "write"), can_infra=can(request, "infra"), **context)
    return HTMLResponse(html, status_code=status_code, headers={"cache-control": "no-store"})


def not_found(request: Request, what: str, back: str, back_label: str) -> HTMLResponse:
    """The 404 page: what was not found and a link back to its list."""
    return render(request, "404.html", status_code=404, what=what, back=back, back_label=back_label)
