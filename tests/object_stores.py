"""Real object-store servers for the ``s3`` and ``azure_blob`` datastore tests (issue 12 item 3).

* S3: moto's server mode (``moto[server]``, from the test extra) in a subprocess on an
  OS-assigned loopback port, with authentication on: the fixture creates an IAM user allowed
  ``s3:*`` and its access key in moto's first unauthenticated calls, so a wrong key or secret is
  refused as AWS refuses it (``SignatureDoesNotMatch``, ``InvalidAccessKeyId``).
* Azure Blob: Azurite (npm package ``azurite``, installed into ``.tools/azurite`` by
  ``scripts/install-azurite.sh``), ``azurite-blob`` on an OS-assigned loopback port, in memory;
  its well-known development account ``devstoreaccount1`` and key.

Each is started once per session. Without it (moto not installed, Azurite not installed) the
tests that need it skip naming the fix; with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

REPO = Path(__file__).resolve().parents[1]
AZURITE_BIN = Path(os.environ.get("OPENAML_AZURITE_BIN") or REPO / ".tools/azurite/node_modules/.bin/azurite-blob")
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (the same in every Azurite: not a secret)
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(what: str) -> None:
    """Skip naming the fix; under CI=true fail (the object-store tests must run in CI)."""
    if _in_ci():
        pytest.fail(f"{what} (CI=true: the object-store datastore tests must run, not skip)", pytrace=False)
    pytest.skip(what)


@dataclass
class S3Server:
    """A running moto S3 API: ``endpoint_url`` and an access key it accepts."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    proc: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key)

    def new_bucket(self) -> str:
        name = f"openaml-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def definition(self, name: str, bucket: str | None = None) -> dict[str, Any]:
        """A ``type: s3`` datastore definition on a new (or the given) bucket, with credentials."""
        return {"name": name, "type": "s3", "bucket": bucket or self.new_bucket(), "endpoint_url": self.endpoint_url,
                "region": "us-east-1", "credentials": {"access_key_id": self.access_key_id,
                                                      "secret_access_key": self.secret_access_key}}


@dataclass
class BlobServer:
    """A running Azurite blob service: ``account_url`` (``http://127.0.0.1:<port>/devstoreaccount1``)."""

    account_url: str
    proc: subprocess.Popen[str]

    def service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(self.account_url, credential={"account_name": AZURITE_ACCOUNT,
                                                               "account_key": AZURITE_KEY})

    def new_container(self) -> str:
        name = f"openaml-{uuid.uuid4().hex[:12]}"
        with self.service() as svc:
            svc.create_container(name)
        return name

    def definition(self, name: str, container: str | None = None) -> dict[str, Any]:
        """A ``type: azure_blob`` datastore definition on a new (or the given) container, with its key."""
        return {"name": name, "type": "azure_blob", "account_name": AZURITE_ACCOUNT,
                "container_name": container or self.new_container(), "endpoint": self.account_url,
                "protocol": "http", "credentials": {"account_key": AZURITE_KEY}}


def _wait_for(proc: subprocess.Popen[str], pattern: str, what: str, timeout: float = 60) -> str:
    """The first match of ``pattern`` in the process's output (read line by line)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    stream: IO[str] = proc.stdout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            _drain(stream)
            return m.group(1)
    proc.kill()
    raise RuntimeError(f"{what} did not start: {''.join(seen[-20:])}")


def _drain(stream: IO[str]) -> None:
    """Keep reading the server's output so that its pipe never fills."""
    import threading

    threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()


def start_moto() -> S3Server:
    """moto's S3 API with authentication, on a free loopback port (see the module's doc)."""
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4", "MOTO_CALL_RESET_API": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = _wait_for(proc, r"Running on (http://127\.0\.0\.1:\d+)", "moto server")
    import boto3

    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bootstrap",
                       aws_secret_access_key="bootstrap")
    iam.create_user(UserName="openaml")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    arn = iam.create_policy(PolicyName="s3-all", PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="openaml", PolicyArn=arn)
    key = iam.create_access_key(UserName="openaml")["AccessKey"]
    return S3Server(url, key["AccessKeyId"], key["SecretAccessKey"], proc)


def start_azurite(location: Path | None = None) -> BlobServer:
    """Azurite's blob service on a free loopback port, in memory (or its files under ``location``)."""
    store = ["--location", str(location)] if location is not None else ["--inMemoryPersistence"]
    proc = subprocess.Popen([str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", "0", *store,
                             "--skipApiVersionCheck", "--loose"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = _wait_for(proc, r"listens on (http://127\.0\.0\.1:\d+)", "azurite")
    return BlobServer(f"{url}/{AZURITE_ACCOUNT}", proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Server]:
    """A moto S3 server for the session (skips without ``moto[server]``; fails under CI=true)."""
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        unavailable(f"moto[server] is not installed ({exc}); install the test extra (scripts/install.sh)")
    server = start_moto()
    yield server
    _stop(server.proc)


@pytest.fixture(scope="session")
def azurite() -> Iterator[BlobServer]:
    """An Azurite blob service for the session (skips without it; fails under CI=true)."""
    if not AZURITE_BIN.exists():
        unavailable(f"Azurite is not installed at {AZURITE_BIN}; run scripts/install-azurite.sh (needs npm)")
    server = start_azurite()
    yield server
    _stop(server.proc)
