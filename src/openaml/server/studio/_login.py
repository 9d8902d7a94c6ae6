"""The studio's login page on a server with a token or users.

The token is typed once into a form posted to ``/login`` (same origin: the request guard checks
``Origin`` on every POST) and exchanged for the server's session cookie (``openaml_session``:
signed, ``HttpOnly``, ``SameSite=Strict``, ``Secure`` over TLS; server/_auth.py), which carries no
token. A job's token is refused (jobs do not browse). ``POST /logout`` clears the cookie and ends
the session on the server.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from openaml.server.studio._common import render

__all__ = ["router", "safe_next"]

router = APIRouter(include_in_schema=False)


def safe_next(value: str | None) -> str:
    """A local path to go to after login (``/...`` but not ``//host``); ``/`` otherwise (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@router.get("/favicon.ico")
def favicon() -> Response:
    """The studio's icon (an SVG in the package; browsers ask for /favicon.ico on every page)."""
    from fastapi.responses import FileResponse

    from openaml.server.studio._common import STATIC_DIR

    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml",
                        headers={"cache-control": "public, max-age=86400"})


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/", link_token: str = "") -> HTMLResponse:
    """The sign-in form. ``link_token``: the page asked for had a ``?token=`` that was not used
    (``invalid``: not valid; ``elsewhere``: given on a page other than ``/``, the only one taking it)."""
    settings = request.app.state.ctx.settings
    from openaml.server._serve import is_loopback

    return render(request, "login.html", next=safe_next(next), error=None,
                  link_token=link_token if link_token in ("invalid", "elsewhere") else "",
                  tokenless=not settings.token and is_loopback(settings.host))


@router.post("/login")
async def login(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:
    """Check the token (the server's, or a user's) and set the session cookie; 401 and the form again otherwise."""
    from starlette.concurrency import run_in_threadpool

    from openaml.server._auth import SESSION_COOKIE
    from openaml.services._actor import OWNER
    from openaml.services.users import SESSION_S

    ctx = request.app.state.ctx
    token = token.strip()
    principal = None
    server_token = ctx.settings.token
    if token and server_token and hmac.compare_digest(token.encode("utf-8", "surrogateescape"),
                                                      server_token.encode("utf-8")):
        principal = OWNER
    users = ctx.services.get("users")
    if principal is None and token and users is not None and len(token) < 4096:
        principal = await run_in_threadpool(users.authenticate, token)
    if principal is None or principal.kind == "job" or users is None:
        return render(request, "login.html", status_code=401, next=safe_next(next),
                      error="That token is not valid on this server (a user's token, or the server's token).")
    value = users.session_token(principal)
    resp = RedirectResponse(safe_next(next), status_code=303)
    resp.set_cookie(SESSION_COOKIE, value, max_age=int(SESSION_S), path="/", httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")
    resp.headers["cache-control"] = "no-store"
    return resp


@router.post("/logout")
def logout(request: Request) -> Response:
    from openaml.server._auth import SESSION_COOKIE

    users = request.app.state.ctx.services.get("users")
    value = request.cookies.get(SESSION_COOKIE)
    if users is not None and value:  # ended on the server too: a copied cookie is refused from now on
        users.revoke_session(value)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


def login_location(path: str, query: str) -> str:
    """Where a browser without a session is sent: the login page, then back to ``path``.

    A ``token`` query parameter is dropped: it is never carried into the login form, the redirect or
    the browser's history (the token travels only in the login form's POST body)."""
    had_token = False
    if query:
        from urllib.parse import parse_qsl, urlencode

        pairs = parse_qsl(query, keep_blank_values=True)
        had_token = any(k == "token" for k, _ in pairs)
        query = urlencode([(k, v) for k, v in pairs if k != "token"])
    target = path + (f"?{query}" if query else "")
    note = ("&link_token=" + ("invalid" if path == "/" else "elsewhere")) if had_token else ""
    return "/login?next=" + quote(safe_next(target), safe="") + note
