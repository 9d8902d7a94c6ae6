"""Secrets at rest and workspace privacy (issue 10, item 2), on a real server started with a token.

After a job with code and outputs has run and an endpoint and a cloud datastore with an account
key exist: no file of the workspace is readable (or writable) by group or others, and neither the
server token nor an endpoint key nor a datastore key is found by a byte search of the workspace.
An older database holding those secrets in clear is encrypted at the next start.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import subprocess
from pathlib import Path

import pytest

from openaml import MLClient, command
from openaml.entities import AzureBlobDatastore, ManagedOnlineEndpoint
from tests.conftest import start_server


def _grep(root: Path, needle: str) -> list[str]:
    r = subprocess.run(["grep", "-rlaF", needle, str(root)], capture_output=True, text=True)
    return [line for line in r.stdout.splitlines()
            # the owner's credential file (0600), where clients on this machine read the server token
            if not line.endswith("/server.token")]


def _not_private(root: Path) -> list[str]:
    bad = []
    for p in [root, *root.rglob("*")]:
        if p.is_symlink():
            continue
        mode = p.stat().st_mode
        if mode & 0o077:
            bad.append(f"{p} {oct(mode & 0o777)}")
    return bad


def test_workspace_is_private_and_secrets_are_not_stored_in_clear(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(32)
    ws = tmp_path / "ws"
    srv = start_server(ws, name="secrets", env={"OPENAML_TOKEN": token})
    try:
        ml = MLClient(workspace=srv.url, token=token)
        try:
            ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="sec-ep")).result()
            keys = ml.online_endpoints.get_keys("sec-ep")
            account_key = "AK" + secrets.token_hex(24)
            ml.datastores.create_or_update(AzureBlobDatastore(
                name="sec-blob", account_name="acct", container_name="c",
                credentials={"account_key": account_key}), skip_validation=True)  # not reachable here
            src = tmp_path / "src"
            src.mkdir()
            (src / "train.py").write_text("import os\nos.makedirs('outputs', exist_ok=True)\n"
                                          "open('outputs/model.txt', 'w').write('m')\nprint('trained')\n")
            job = ml.jobs.create_or_update(command(code=str(src), command="python train.py",
                                                   environment="AzureML-sklearn-1.5@latest"))
            final = ml.jobs.wait(job.name, timeout=600)
            assert final.status == "Completed", ml.jobs.get_raw(job.name)["log_tail"]
            assert ml.online_endpoints.get_keys("sec-ep").primary_key == keys.primary_key  # still retrievable
        finally:
            ml.close()
        assert _not_private(ws) == []
        for secret in (token, keys.primary_key, keys.secondary_key, account_key):
            assert _grep(ws, secret) == [], secret
        assert "token" not in json.loads((ws / "server.json").read_text()) or \
            json.loads((ws / "server.json").read_text())["token"] in (True, False)
    finally:
        srv.stop()

    # an older version's database: the same secrets in clear; the next start encrypts them
    plain_key = "PLAIN" + secrets.token_hex(20)
    plain_ds = "PLAINDS" + secrets.token_hex(20)
    db = sqlite3.connect(ws / "openaml.db")
    with db:
        db.execute("UPDATE online_endpoints SET auth = ? WHERE name = 'sec-ep'",
                   (json.dumps({"primary_key": plain_key, "secondary_key": plain_key + "2",
                                "token_secret": plain_key + "3"}),))
        spec = json.loads(db.execute("SELECT spec FROM datastores WHERE name = 'sec-blob'").fetchone()[0])
        spec["credentials"] = {"account_key": plain_ds}
        db.execute("UPDATE datastores SET spec = ? WHERE name = 'sec-blob'", (json.dumps(spec),))
        db.execute("UPDATE workspace_meta SET value = ? WHERE key = 'job_token_secret'", ("PLAINSIGNING" + "x" * 30,))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    assert _grep(ws, plain_key)  # the planted values are there in clear
    srv = start_server(ws, env={"OPENAML_TOKEN": token}, create=False)
    try:
        ml = MLClient(workspace=srv.url, token=token)
        try:
            assert ml.online_endpoints.get_keys("sec-ep").primary_key == plain_key  # still retrievable
        finally:
            ml.close()
        for secret in (plain_key, plain_ds, "PLAINSIGNING"):
            assert _grep(ws, secret) == [], secret
        assert _not_private(ws) == []
    finally:
        srv.stop()


def test_make_private_fixes_an_existing_tree_and_sets_the_umask(tmp_path: Path) -> None:
    import os

    from openaml.workspace import make_private

    root = tmp_path / "ws"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_text("x")
    (root / "a" / "b" / "f.txt").chmod(0o644)
    (root / "run.sh").write_text("x")
    (root / "run.sh").chmod(0o755)
    (root / "link").symlink_to("/etc/hostname")
    old = os.umask(0o022)
    try:
        make_private(root)
        assert os.umask(0o077) == 0o077
    finally:
        os.umask(old)
    assert (root / "run.sh").stat().st_mode & 0o777 == 0o700
    assert (root / "a" / "b" / "f.txt").stat().st_mode & 0o777 == 0o600
    assert root.stat().st_mode & 0o777 == 0o700
    assert Path("/etc/hostname").stat().st_mode & 0o004  # a link's target is not touched


def test_secret_box_round_trip_and_plain_values(tmp_path: Path) -> None:
    from openaml.store import SecretBox

    box = SecretBox(tmp_path / "secret.key")
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    # secrets with characters base64 never has, so that a chance match in the ciphertext is impossible
    k1, k2 = "first secret: k1!", "second secret: k2!"
    sealed = box.seal_tree({"a": k1, "n": 3, "l": [k2]})
    assert sealed["n"] == 3 and sealed["a"].startswith("enc:v1:") and sealed["l"][0].startswith("enc:v1:")
    assert k1 not in json.dumps(sealed) and k2 not in json.dumps(sealed)
    assert box.open_tree(sealed) == {"a": k1, "n": 3, "l": [k2]}
    assert box.open("plain") == "plain" and box.seal(sealed["a"]) == sealed["a"]
    assert SecretBox(tmp_path / "secret.key").open(sealed["a"]) == k1  # the same key next time
    (tmp_path / "other.key").write_text("not a key")
    with pytest.raises(ValueError, match="other.key"):
        SecretBox(tmp_path / "other.key")


def test_upgrade_from_revision_0003_adds_users_and_seals_plain_endpoint_keys(tmp_path: Path) -> None:
    from alembic import command as alembic
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from openaml.store import EndpointRepository, MetadataStore, SecretBox
    from openaml.store._store import _MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:  # a database as the previous release left it
        cfg.attributes["connection"] = conn
        alembic.upgrade(cfg, "0003")
        conn.execute(text("INSERT INTO online_endpoints (name, provisioning_state, spec, auth, created_at, updated_at) "
                          "VALUES ('old-ep', 'Succeeded', '{}', :auth, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"),
                     {"auth": json.dumps({"primary_key": "OLDKEY1", "secondary_key": "OLDKEY2",
                                          "token_secret": "OLDSECRET"})})
    engine.dispose()
    store = MetadataStore(url).start()
    try:
        store.secret_box = SecretBox(tmp_path / "secret.key")
        repo = EndpointRepository(store)
        assert repo.seal_plain() == 1 and repo.seal_plain() == 0
        assert repo.get_endpoint("old-ep")["auth"]["primary_key"] == "OLDKEY1"
        with store._session() as s:
            raw = s.execute(text("SELECT auth FROM online_endpoints")).scalar_one()
            assert "OLDKEY" not in str(raw) and "enc:v1:" in str(raw)
            assert s.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
        store.compact()
    finally:
        store.close()
    assert b"OLDKEY1" not in (tmp_path / "old.db").read_bytes()
