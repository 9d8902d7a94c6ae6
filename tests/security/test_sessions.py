"""The MLflow UI on a token server: a visit with ``?token=`` gets a session cookie (HttpOnly,
SameSite=Strict) and the page without the token; the UI's static files and calls then work with
the cookie alone. ``?token=`` is read nowhere else."""

from __future__ import annotations

import httpx

TOKEN = "session-token-0123456789abcdef"


def test_mlflow_ui_works_on_a_token_server_with_a_session_cookie(serve_with) -> None:  # type: ignore[no-untyped-def]
    srv = serve_with(env={"OPENAML_TOKEN": TOKEN}, name="ws-session")
    with httpx.Client(base_url=srv.url, timeout=60) as anon:
        assert anon.get("/mlflow/").status_code == 401
        assert anon.get("/mlflow/?token=wrong-token-0123456789").status_code == 401
        # the token in any other URL is ignored
        assert anon.get(f"/api/v1/jobs?token={TOKEN}").status_code == 401
        assert anon.get(f"/mlflow/ajax-api/2.0/mlflow/experiments/search?max_results=5&token={TOKEN}").status_code == 401

    with httpx.Client(base_url=srv.url, timeout=60, follow_redirects=False) as browser:
        first = browser.get(f"/mlflow/?token={TOKEN}")
        assert first.status_code == 303
        assert first.headers["location"] == "/mlflow/"
        cookie = first.headers["set-cookie"]
        assert cookie.startswith("openaml_session=oas1.") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert TOKEN not in cookie
        page = browser.get("/mlflow/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        statics = [s for s in __import__("re").findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page.text)]
        if statics:
            path = statics[0] if statics[0].startswith("/") else "/mlflow/" + statics[0].lstrip("./")
            assert browser.get(path).status_code == 200, path
        search = browser.get("/mlflow/ajax-api/2.0/mlflow/experiments/search", params={"max_results": 5})
        assert search.status_code == 200, search.text
        assert browser.get("/api/v1/jobs").status_code == 200

    # a forged or tampered cookie is no session
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    r = httpx.get(f"{srv.url}/mlflow/ajax-api/2.0/mlflow/experiments/search", params={"max_results": 5},
                  cookies={"openaml_session": forged}, timeout=60)
    assert r.status_code == 401


def test_a_cross_site_write_with_the_session_cookie_is_refused(serve_with) -> None:  # type: ignore[no-untyped-def]
    srv = serve_with(env={"OPENAML_TOKEN": TOKEN}, name="ws-session-csrf")
    first = httpx.get(f"{srv.url}/mlflow/?token={TOKEN}", timeout=60)
    value = first.cookies.get("openaml_session") or first.history[0].cookies.get("openaml_session")
    assert value
    r = httpx.post(f"{srv.url}/mlflow/ajax-api/2.0/mlflow/experiments/create", json={"name": "csrf"},
                   cookies={"openaml_session": value}, headers={"Origin": "http://evil.example"}, timeout=60)
    assert r.status_code == 403
    ok = httpx.post(f"{srv.url}/mlflow/ajax-api/2.0/mlflow/experiments/create", json={"name": "same-site"},
                    cookies={"openaml_session": value}, headers={"Origin": srv.url}, timeout=60)
    assert ok.status_code == 200, ok.text
