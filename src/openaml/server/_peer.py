"""Which local process sent a tokenless request to a loopback server, and may it act as the owner.

A loopback server started without a token takes a request without a token as its owner's (the user's
own CLI, SDK, ``mlflow`` client and browser on the machine). That must not hold for every local
process: a job's code holds only a scoped token but could simply send none, and so could a
deployment's ``score.py`` or a program of another OS user. So a tokenless request is the owner's
only when the process at the other end of the TCP connection

1. runs as the server's own OS user: the ``uid`` of the client's socket, looked up by the
   connection's addresses with one netlink ``sock_diag`` query (what ``ss`` uses; a hash look-up in
   the kernel, about 15 us), else in ``/proc/net/tcp`` and ``/proc/net/tcp6`` (the line whose local
   address is the request's client address and whose remote address is the server's; reading them
   walks the kernel's whole connection table, milliseconds on a large machine), and
2. is not a job's or a deployment's: the client socket's inode is not among the open files
   (``/proc/<pid>/fd``) of the process trees of the server's children (job runners, deployment
   workers, environment builds) and of the runners of active jobs started by an earlier server
   (:func:`job_runner_pids`, read from the store at most once a second: those runners all exist when
   the server starts), and
3. is found: a process outside those trees holds the socket (newest processes first), and none of
   its ancestors is the server or a job's runner. This closes the race in which a job moves the
   descriptor between its own processes while their open files are read.

A socket that no process holds any more (the client sent its request and closed, inode 0) is not the
owner's either. Anything else gets 401 naming how to authenticate. The verdict is kept for the
connection's lifetime (:func:`forget` is called when it closes). Where ``/proc`` does not
exist (not Linux), today's behaviour is kept: every tokenless request is the owner's, and a warning
is logged once.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["PeerCheck", "Peer", "forget", "find_socket", "process_tree"]

log = logging.getLogger("openaml.server")

_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Peer:
    """The client end of a TCP connection as ``/proc/net/tcp*`` lists it: owner ``uid`` and socket ``inode``
    (0 when no process holds the socket any more)."""

    uid: int
    inode: int


def _hex4(ip: str) -> str | None:
    try:
        return f"{struct.unpack('=I', socket.inet_aton(ip))[0]:08X}"
    except OSError:
        return None


def _hex6(ip: str) -> str | None:
    try:
        return "".join(f"{w:08X}" for w in struct.unpack("=4I", socket.inet_pton(socket.AF_INET6, ip)))
    except OSError:
        return None


def _forms(ip: str) -> list[str]:
    """How ``ip`` may be printed in ``/proc/net/tcp`` (IPv4) and ``tcp6`` (IPv6, or IPv4 mapped)."""
    ip = ip.split("%", 1)[0]
    if ip.startswith("::ffff:") and "." in ip:
        ip = ip[len("::ffff:"):]
    out = []
    if "." in ip:
        out += [f for f in (_hex4(ip), _hex6("::ffff:" + ip)) if f]
    elif (h := _hex6(ip)) is not None:
        out.append(h)
    return out


_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY, _NLMSG_ERROR, _NLM_F_REQUEST = 4, 20, 2, 1
_NO_COOKIE = 0xFFFFFFFF


def _packed(ip: str) -> tuple[int, bytes] | None:
    """``(family, 16 bytes)`` of ``ip`` as ``struct inet_diag_sockid`` holds it."""
    ip = ip.split("%", 1)[0]
    try:
        return socket.AF_INET, socket.inet_aton(ip) + bytes(12)
    except OSError:
        pass
    try:
        return socket.AF_INET6, socket.inet_pton(socket.AF_INET6, ip)
    except OSError:
        return None


def _diag(client: tuple[str, int], server: tuple[str, int]) -> Peer | None:
    """The client socket through netlink ``sock_diag`` (``SOCK_DIAG_BY_FAMILY``, an exact 4-tuple
    request: ``struct inet_diag_req_v2``); None when the kernel has no such socket or cannot answer."""
    src, dst = _packed(client[0]), _packed(server[0])
    if src is None or dst is None or src[0] != dst[0]:
        return None
    sockid = struct.pack("!HH16s16s", client[1], server[1], src[1], dst[1]) + struct.pack("=III", 0, _NO_COOKIE,
                                                                                       _NO_COOKIE)
    req = struct.pack("=BBBBI", src[0], socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1.0)
            nl.sendto(struct.pack("=IHHII", 16 + len(req), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0) + req, (0, 0))
            data = nl.recv(8192)
    except (OSError, AttributeError):  # no netlink (not Linux, or not allowed)
        return None
    if len(data) < 16 + 72 or struct.unpack_from("=H", data, 4)[0] == _NLMSG_ERROR:
        return None
    uid, inode = struct.unpack_from("=II", data, 16 + 64)  # struct inet_diag_msg: idiag_uid, idiag_inode
    return Peer(uid=uid, inode=inode)


def find_socket(client: tuple[str, int], server: tuple[str, int]) -> Peer | None:
    """The client's end of the connection ``client`` -> ``server`` (addresses as ASGI's ``scope["client"]``
    and ``scope["server"]``), or None when no such socket is listed.

    Raises:
        FileNotFoundError: ``/proc/net/tcp`` does not exist (not Linux).
    """
    found = _diag(client, server)
    if found is not None:
        return found
    local = [f"{h}:{client[1]:04X}" for h in _forms(client[0])]
    remote = [f"{h}:{server[1]:04X}" for h in _forms(server[0])]
    wanted = [f" {a} {b} " for a in local for b in remote if len(a) == len(b)]
    for i, table in enumerate(_TABLES):
        try:
            with open(table, encoding="ascii") as fh:
                text = fh.read()
        except FileNotFoundError:
            if i == 0:
                raise
            continue
        for w in wanted:
            at = text.find(w)
            if at < 0:
                continue
            end = text.find("\n", at)
            fields = text[text.rfind("\n", 0, at) + 1:end if end >= 0 else None].split()
            try:
                return Peer(uid=int(fields[7]), inode=int(fields[9]))
            except (IndexError, ValueError):
                return None
    return None


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                out += [int(x) for x in fh.read().split()]
        except (OSError, ValueError):
            continue
    return out


def process_tree(roots: Iterable[int]) -> list[int]:
    """``roots`` and all their descendants (pids as this process sees them), each once."""
    seen: dict[int, None] = {}
    stack = [p for p in roots if p > 0]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen[pid] = None
        stack += _children(pid)
    return list(seen)


def holder(inode: int, pids: Iterable[int]) -> tuple[int | None, bool]:
    """``(pid, unsure)``: the first of ``pids`` with socket ``inode`` open (or None), and whether some
    process's open files could not be read (a non-dumpable process of a server that is not root)."""
    target = f"socket:[{inode}]"
    unsure = False
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except FileNotFoundError:
            continue  # exited meanwhile
        except PermissionError:
            unsure = True
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") == target:
                    return pid, unsure
            except OSError:
                continue
    return None, unsure


def job_runner_pids(ctx: object) -> list[int]:
    """Pids of the runners of the workspace's active jobs (as recorded by the scheduler, ``runner_pid``
    in a job's runtime), so that runners re-attached after a server restart count too."""
    from openaml.constants import JobStatus

    store = getattr(ctx, "store", None)
    if store is None:
        return []
    active = (JobStatus.PREPARING, JobStatus.RUNNING, JobStatus.FINALIZING, JobStatus.CANCEL_REQUESTED)
    try:
        jobs = store.list_jobs(status=active, include_archived=True)
    except Exception:  # noqa: BLE001 - a store error must not make a job the owner: the server's children still count
        log.exception("could not list active jobs for the tokenless-request check")
        return []
    out = []
    for job in jobs:
        try:
            pid = int((job.get("runtime") or {}).get("runner_pid") or 0)
        except (TypeError, ValueError):
            continue
        if pid > 0:
            out.append(pid)
    return out


_verdicts: OrderedDict[tuple[str, int, int], str | None] = OrderedDict()
_warned = False


def forget(client: tuple[str, int] | None, server_port: int | None) -> None:
    """Drop the cached verdict of a closed connection (its client port may be reused by another process)."""
    if client and server_port is not None:
        _verdicts.pop((str(client[0]), int(client[1]), int(server_port)), None)


class PeerCheck:
    """Decides whether a tokenless request on a loopback server is its owner's (module docstring).

    ``roots``: a callable giving the pids whose process trees are a job's or a deployment's (default:
    the server's children and :func:`job_runner_pids`).
    """

    def __init__(self, ctx: object, roots: Callable[[], Iterable[int]] | None = None) -> None:
        self.ctx = ctx
        self.roots = roots or (lambda: [*_children(os.getpid()), *self._runners()])
        self.uid = os.getuid()
        self._runner_pids: tuple[float, list[int]] = (-1.0, [])

    def _runners(self) -> list[int]:
        at, pids = self._runner_pids
        now = time.monotonic()
        if now - at > 1.0:
            pids = job_runner_pids(self.ctx)
            self._runner_pids = (now, pids)
        return pids

    def cached(self, client: tuple[str, int] | None, server: tuple[str, int] | None) -> tuple[bool, str | None]:
        """``(known, refusal)`` for the connection, from the cache (``known`` False: call :meth:`refusal`)."""
        if not client or not server:
            return False, None
        key = (str(client[0]), int(client[1]), int(server[1]))
        if key in _verdicts:
            return True, _verdicts[key]
        return False, None

    def refusal(self, client: tuple[str, int] | None, server: tuple[str, int] | None) -> str | None:
        """Why the peer of this connection is not the owner, or None when it is. Blocking (reads ``/proc``):
        call it off the event loop. The answer is cached for the connection."""
        global _warned
        if not client or not server:
            return "the client's address is unknown"
        try:
            answer = self._decide((str(client[0]), int(client[1])), (str(server[0]), int(server[1])))
        except FileNotFoundError:
            if not _warned:
                _warned = True
                log.warning("/proc is unavailable: a request without a token on this loopback server is "
                            "taken as the owner's from any local process (jobs, deployments, other OS users "
                            "included); start the server with a token (--token-file) on a shared machine")
            answer = None
        key = (str(client[0]), int(client[1]), int(server[1]))
        _verdicts[key] = answer
        while len(_verdicts) > _CACHE_SIZE:
            try:
                _verdicts.popitem(last=False)
            except KeyError:
                break
        return answer

    def _decide(self, client: tuple[str, int], server: tuple[str, int]) -> str | None:
        if not os.path.isdir("/proc/self/fd"):
            raise FileNotFoundError("/proc/self/fd")  # no /proc: processes cannot be told apart
        peer = find_socket(client, server)
        if peer is None:
            return "the connection's client socket is not listed in /proc/net/tcp"
        if peer.uid != self.uid:
            return f"it comes from a process of another OS user (uid {peer.uid})"
        if peer.inode == 0:
            return "its client socket is no longer held by any process"
        roots = [*self.roots()]
        tree = process_tree(roots)
        pid, unsure = holder(peer.inode, tree)
        if pid is not None:
            return f"it comes from a job's or a deployment's process (pid {pid})"
        if unsure:
            return "a job's or a deployment's process could not be inspected"
        # Positive identification: a process outside those trees must hold the socket. Not finding it in
        # the trees alone would not do: a job could move the descriptor between its processes (or to a
        # child forked after the trees were listed) while they are read. Newest processes first: a
        # client (a CLI command) has usually just started.
        inside = set(tree)
        others = sorted((int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in inside), reverse=True)
        pid, _unsure = holder(peer.inode, others)
        if pid is None:
            return "no process outside jobs and deployments holds its client socket"
        if pid != os.getpid() and _descends_from(pid, {os.getpid(), *roots}):
            return f"it comes from a process started by the server, a job or a deployment (pid {pid})"
        return None


def _descends_from(pid: int, ancestors: set[int]) -> bool:
    """Whether one of ``pid``'s ancestors (parent, its parent, ...) is in ``ancestors``; True when the chain
    cannot be read (the process is not identified, so it is not taken as the owner's)."""
    for _ in range(256):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
            pid = int(stat[stat.rindex(")") + 2:].split()[1])  # the field after the state: the parent's pid
        except (OSError, ValueError, IndexError):
            return True
        if pid in ancestors:
            return True
        if pid <= 1:
            return False
    return True
