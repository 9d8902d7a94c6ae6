"""The runner's reporting falls back to the workspace's other servers (runner/_report.py, review F4).

The peers are plain HTTP servers standing in for openaml servers at the HTTP level (the end-to-end
case, two real servers on PostgreSQL, is tests/contracts/test_leader_failover.py): one that
answers the runner routes, one that refuses the token (another workspace at that address), and
an address where nothing listens.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from openaml.runner._report import JobGone, Reporter


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _peer(code: int, body: dict[str, Any]) -> tuple[ThreadingHTTPServer, list[str]]:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            seen.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, seen


@pytest.fixture
def peers() -> Iterator[dict[str, Any]]:
    dead = _dead_url()
    live, live_seen = _peer(200, {"status": "Running", "heartbeat_seconds": 1.0})
    live_url = f"http://127.0.0.1:{live.server_address[1]}"
    stranger, stranger_seen = _peer(401, {"error": {"message": "token refused"}})
    stranger_url = f"http://127.0.0.1:{stranger.server_address[1]}"
    yield {"dead": dead, "live": live_url, "live_seen": live_seen, "stranger": stranger_url,
           "stranger_seen": stranger_seen}
    for s in (live, stranger):
        s.shutdown()
        s.server_close()


def test_a_report_goes_to_the_next_server_when_the_one_in_use_does_not_answer(peers: dict[str, Any]) -> None:
    r = Reporter(f"{peers['dead']},{peers['live']}", "job-1", "token")
    assert (r.server_url, r.moved) == (peers["dead"], False)
    assert r.heartbeat()["status"] == "Running"
    assert (r.server_url, r.moved) == (peers["live"], True)
    assert peers["live_seen"] == ["/api/v1/jobs/job-1/runner/heartbeat"]
    # an answer naming the server that just failed as the leader does not send the runner back to it at once
    r.set_servers([peers["dead"], peers["live"]])
    assert r.server_url == peers["live"]
    # a leader that has not failed is followed (it holds the job's whole log)
    r2 = Reporter(peers["live"], "job-1", "token")
    r2.set_servers([peers["stranger"], peers["live"]])
    assert r2.servers == [peers["stranger"], peers["live"]]


def test_a_fallback_that_refuses_the_token_is_skipped_not_taken_as_the_jobs_end(peers: dict[str, Any]) -> None:
    r = Reporter([peers["dead"], peers["stranger"], peers["live"]], "job-2", "token")
    assert r.state({"status": "Running"})["status"] == "Running"
    assert r.server_url == peers["live"] and peers["stranger_seen"]
    # from the server in use, a refusal is the job's end
    only = Reporter(peers["stranger"], "job-2", "token")
    with pytest.raises(JobGone):
        only.heartbeat()


def test_no_server_answering_is_transient(peers: dict[str, Any]) -> None:
    r = Reporter([peers["dead"], _dead_url()], "job-3", "token")
    with pytest.raises(OSError):
        r.heartbeat()
    assert r.server_url == peers["dead"]  # nothing answered: nothing changed
