"""What every studio page shares: the template environment, the caller's role, the 404 page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

__all__ = ["render", "not_found", "bad_request", "error_page", "can", "services", "duration", "fmt_time", "STATIC_DIR"]

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


def seconds(value: Any) -> str:
    """A duration in seconds in :func:`duration`'s format (``5.2s``, ``3m 04s``, ``1h 02m``); "" for none."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    if value < 60:
        return f"{value:.1f}s"
    m, s = divmod(int(value), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def fmt_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value or "")


_env.globals.update(duration=duration, seconds=seconds, fmt_time=fmt_time, TERMINAL=TERMINAL)


def compile_templates() -> int:
    """Compile every template now (the environment caches them): a server start pays it, not the first
    request of each page. Returns how many."""
    names = _env.list_templates(extensions=["html"])
    for name in names:
        _env.get_template(name)
    return len(names)


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
    context.setdefault("status", status_code)
    from openaml.server._auth import SESSION_COOKIE

    html = _env.get_template(template).render(
        request=request, workspace=ctx.workspace_name, principal=principal,
        signed_in=SESSION_COOKIE in request.cookies,  # a session to end (a tokenless server's owner has none)
        can_write=can(request, "write"), can_infra=can(request, "infra"), **context)
    return HTMLResponse(html, status_code=status_code, headers={"cache-control": "no-store"})


LIST_PER_PAGE = 50


def _cell_text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)


def sort_key(value: Any) -> tuple[int, float, str]:
    """Missing values last; numbers by value; the rest by text, case-insensitively."""
    if value is None or value == "":
        return (1, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    if str(value).replace(".", "", 1).isdigit():  # versions and counts that arrive as text
        return (0, float(str(value)), "")
    return (0, 0.0, _cell_text(value).lower())


def render_list(request: Request, *, items: list[Any], columns: tuple[str, ...], **context: Any) -> HTMLResponse:
    """A noun's list page (``list.html``), filtered, sorted and paged on the server from the query:
    ``q`` (text every shown column is searched for, case-insensitively), ``sort`` (a column) and
    ``order`` (``asc``/``desc``), ``page`` (from 1) and ``per_page`` (1-500, default 50). A bad value
    gets a 400 page naming it, not a silent default."""
    qp = request.query_params
    q = qp.get("q", "").strip()
    sort, order = qp.get("sort", ""), qp.get("order", "asc")
    bad = None
    try:
        page, per_page = int(qp.get("page", "1")), int(qp.get("per_page", str(LIST_PER_PAGE)))
    except ValueError:
        page, per_page, bad = 1, LIST_PER_PAGE, "page and per_page must be whole numbers"
    if bad is None and (page < 1 or not 1 <= per_page <= 500):
        bad = "page must be 1 or more and per_page between 1 and 500"
    if bad is None and sort and sort not in columns:
        bad = f"sort must be one of {', '.join(columns)}"
    if bad is None and order not in ("asc", "desc"):
        bad = "order must be asc or desc"
    if bad is not None:
        return bad_request(request, f"Bad list query: {bad}.", request.url.path, "the unfiltered list")
    rows = [it for it in items if not q or q.lower() in " ".join(_cell_text(it.get(c)) for c in columns).lower()]
    if sort:
        rows.sort(key=lambda it: sort_key(it.get(sort)), reverse=order == "desc")
    total = len(rows)
    pages = max(1, -(-total // per_page))
    shown = rows[(page - 1) * per_page: page * per_page]
    return render(request, "list.html", items=shown, columns=columns, total=total, all_count=len(items), q=q,
                  sort=sort, order=order, page=page, pages=pages, per_page=per_page, **context)


def not_found(request: Request, what: str, back: str, back_label: str) -> HTMLResponse:
    """The 404 page: what was not found and a link back to its list."""
    return render(request, "404.html", status_code=404, what=what, back=back, back_label=back_label)


def bad_request(request: Request, message: str, back: str, back_label: str) -> HTMLResponse:
    """The 400 page: what is wrong with the request (naming the parameter and the accepted values)
    and a link back."""
    return render(request, "404.html", status_code=400, message=message, back=back, back_label=back_label)


_NOT_STUDIO = ("/api/", "/mlflow", "/endpoints/", "/studio-static/", "/openapi.json", "/docs", "/health")


def error_page(request: Request, status: int, message: str) -> HTMLResponse | None:
    """The studio's HTML error page (the message and a link home) for a browser asking for HTML
    (``Accept: text/html``) outside the API; None for API clients, which get the JSON error."""
    path = request.url.path
    if "text/html" not in request.headers.get("accept", "") or path.startswith(_NOT_STUDIO):
        return None
    try:
        return render(request, "404.html", status_code=status, message=message, back="/", back_label="studio home")
    except Exception:  # noqa: BLE001 - a broken page must not hide the error it reports
        return None
