"""Data assets end to end: real server, real SDK, real CLI (issue 2, item 4)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from openaml.entities import Data
from openaml.errors import ConflictError, NotFoundError, PathEscapeError, ValidationError

CONFORMANCE = Path(__file__).parent / "conformance" / "assets" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _blob(server) -> Path:  # type: ignore[no-untyped-def]
    return server.path / "datastores" / "workspaceblobstore"


def _local(server, uri: str) -> Path:  # type: ignore[no-untyped-def]
    prefix = "azureml://datastores/workspaceblobstore/paths/"
    assert uri.startswith(prefix), uri
    return _blob(server) / uri[len(prefix):]


def _uploads(server) -> set[str]:  # type: ignore[no-untyped-def]
    root = _blob(server) / "LocalUpload"
    return {p.name for p in root.iterdir()} if root.exists() else set()


# ---------------------------------------------------------------------------- SDK
def test_uri_file_relative_to_cwd_roundtrip(ml_client, server, tmp_path, titanic_csv, monkeypatch):
    shutil.copy(titanic_csv, tmp_path / "titanic.csv")
    monkeypatch.chdir(tmp_path)
    name = _name("titanic")
    created = ml_client.data.create_or_update(Data(name=name, path="./titanic.csv", type="uri_file",
                                                   description="passengers", tags={"src": "book"}))
    assert created.version == "1"
    assert created.path.startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")
    assert created.path.endswith("/titanic.csv")
    assert created.id.endswith(f"/data/{name}/versions/1") and created.id.startswith("/subscriptions/")
    assert _local(server, created.path).read_bytes() == titanic_csv.read_bytes()

    got = ml_client.data.get(name, version=1)
    assert (got.path, got.id, got.type, got.description, got.tags) == (
        created.path, created.id, "uri_file", "passengers", {"src": "book"})
    assert ml_client.data.get(name, label="latest").version == "1"
    assert got.creation_context and got.creation_context["created_at"]


def test_versions_autoincrement_and_are_immutable(ml_client, server, tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    name = _name("auto")
    assert ml_client.data.create_or_update(Data(name=name, path=str(tmp_path / "a.csv"), type="uri_file")).version == "1"
    assert ml_client.data.create_or_update(Data(name=name, path=str(tmp_path / "a.csv"), type="uri_file")).version == "2"
    assert ml_client.data.get(name).version == "2"
    assert ml_client.data.create_or_update(Data(name=name, version="7", path=str(tmp_path / "a.csv"),
                                                type="uri_file")).version == "7"
    assert ml_client.data.create_or_update(Data(name=name, path=str(tmp_path / "a.csv"), type="uri_file")).version == "8"

    # a duplicate explicit version is refused before anything is uploaded
    (tmp_path / "b.csv").write_text("new content\n")
    before = _uploads(server)
    with pytest.raises(ConflictError, match="immutable.*omit the version"):
        ml_client.data.create_or_update(Data(name=name, version=2, path=str(tmp_path / "b.csv"), type="uri_file"))
    assert _uploads(server) == before
    assert [d.version for d in ml_client.data.list(name)] == ["8", "7", "2", "1"]


def test_get_unknown_version_lists_versions(ml_client, tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    name = _name("missing")
    ml_client.data.create_or_update(Data(name=name, version="1", path=str(tmp_path / "a.csv"), type="uri_file"))
    with pytest.raises(NotFoundError, match=rf"{name}:9 not found; versions: 1"):
        ml_client.data.get(name, version="9")
    with pytest.raises(NotFoundError, match="not found"):
        ml_client.data.get(_name("nobody"), version="1")
    with pytest.raises(ValidationError, match="only label is 'latest'"):
        ml_client.data.get(name, label="production")


def test_archive_hides_from_list_and_latest_but_not_from_get(ml_client, tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    name = _name("arch")
    for _ in range(2):
        ml_client.data.create_or_update(Data(name=name, path=str(tmp_path / "a.csv"), type="uri_file"))
    ml_client.data.archive(name, version="2")
    assert ml_client.data.get(name, label="latest").version == "1"
    assert [d.version for d in ml_client.data.list(name)] == ["1"]
    assert [d.version for d in ml_client.data.list(name, list_view_type="ArchivedOnly")] == ["2"]
    assert [d.version for d in ml_client.data.list(name, list_view_type="All")] == ["2", "1"]
    assert ml_client.data.get(name, version="2").archived is True
    listed = {d.name: d.version for d in ml_client.data.list()}
    assert listed[name] == "1"

    ml_client.data.archive(name)  # the whole asset
    assert name not in {d.name for d in ml_client.data.list()}
    with pytest.raises(NotFoundError, match="every version .* is archived"):
        ml_client.data.get(name)
    assert ml_client.data.get(name, version="1").version == "1"

    ml_client.data.restore(name)
    assert ml_client.data.get(name).version == "2"


def test_resolve_reference_forms(ml_client, tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    name = _name("ref")
    ml_client.data.create_or_update(Data(name=name, path=str(tmp_path / "a.csv"), type="uri_file"))
    v2 = ml_client.data.create_or_update(Data(name=name, path=str(tmp_path / "a.csv"), type="uri_file"))
    ml_client.data.archive(name, version="2")
    forms = {
        f"azureml:{name}:2": "2", f"azureml:{name}@latest": "1", f"{name}:2": "2", f"{name}@latest": "1",
        f"azureml://data/{name}/versions/2": "2", f"azureml://data/{name}/labels/latest": "1",
        v2.id: "2", f"azureml:{v2.id}": "2",
        f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/data/{name}"
        "/versions/1": "1",
        f"azureml://locations/westeurope/workspaces/w/data/{name}/versions/1": "1",
    }
    for ref, version in forms.items():
        got = ml_client.data.resolve(ref)
        assert (got.name, got.version) == (name, version), ref
    with pytest.raises(NotFoundError, match="versions: 1, 2"):
        ml_client.data.resolve(f"azureml:{name}:5")
    with pytest.raises(ValidationError, match="a version is needed"):
        ml_client.data.resolve(f"azureml:{name}")
    with pytest.raises(ValidationError, match="not a data asset reference"):
        ml_client.data.resolve("azureml://models/x/versions/1")


def test_datastore_job_and_remote_paths(ml_client, server):
    rel = f"shared/{uuid.uuid4().hex}"
    folder = _blob(server) / rel
    folder.mkdir(parents=True)
    (folder / "part.csv").write_text("a\n1\n")
    name = _name("ds")
    uri = f"azureml://datastores/workspaceblobstore/paths/{rel}"
    assert ml_client.data.create_or_update(Data(name=name, path=uri)).path == uri
    long_uri = ("azureml://subscriptions/s/resourcegroups/rg/workspaces/w/datastores/workspaceblobstore/paths/"
                f"{rel}/part.csv")
    d = ml_client.data.create_or_update(Data(name=name, path=long_uri, type="uri_file"))
    assert d.path == f"{uri}/part.csv"  # stored in the short form

    with pytest.warns(UserWarning, match="does not exist yet"):  # Azure ML does not check: stored
        assert ml_client.data.create_or_update(Data(name=name, path=f"{uri}/nope.csv", type="uri_file")).path \
            == f"{uri}/nope.csv"
    with pytest.raises(PathEscapeError, match=r"'\.\.'"):
        ml_client.data.create_or_update(Data(name=name, path="azureml://datastores/workspaceblobstore/paths/../../x"))
    with pytest.raises(NotFoundError, match="datastore 'nostore' not found"):
        ml_client.data.create_or_update(Data(name=name, path="azureml://datastores/nostore/paths/x"))
    with pytest.raises(ValidationError, match="uri_file needs a file"):
        ml_client.data.create_or_update(Data(name=name, path=uri, type="uri_file"))

    job_uri = "azureml://jobs/brave_lion_0123456789/outputs/artifacts/paths/model/"
    assert ml_client.data.create_or_update(Data(name=name, path=job_uri)).path == job_uri
    for url in ("https://example.com/data/titanic.csv",
                "wasbs://data@account.blob.core.windows.net/titanic.csv",
                "abfss://fs@account.dfs.core.windows.net/folder/"):
        typ = "uri_folder" if url.endswith("/") else "uri_file"
        assert ml_client.data.create_or_update(Data(name=name, path=url, type=typ)).path == url
    with pytest.raises(ValidationError, match="not a supported URI"):
        ml_client.data.create_or_update(Data(name=name, path="ftp://example.com/x.csv", type="uri_file"))
    with pytest.raises(ValidationError, match="names an asset"):
        ml_client.data.create_or_update(Data(name=name, path=f"azureml:{name}:1", type="uri_file"))


def test_server_refuses_local_paths_and_bad_bodies(ml_client):
    t = ml_client._transport
    with pytest.raises(ValidationError, match="is a local path"):
        t.post("/data/x/versions", json={"path": "./data.csv", "type": "uri_file"})
    with pytest.raises(ValidationError, match="field 'colour': unknown field"):
        t.post("/data/x/versions", json={"path": "https://e.com/a", "colour": "red"})
    with pytest.raises(ValidationError, match="field 'type'"):
        t.post("/data/x/versions", json={"path": "https://e.com/a", "type": "csv"})
    with pytest.raises(ValidationError, match="field 'path' is required"):
        t.post("/data/x/versions", json={"type": "uri_file"})


def test_type_checks_upload_nothing(ml_client, server, tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a.csv").write_text("a\n1\n")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.csv").write_text("a\n1\n")
    before = _uploads(server)
    name = _name("types")
    cases = [
        (Data(name=name, path=str(tmp_path / "folder"), type="uri_file"), "uri_file needs a file"),
        (Data(name=name, path=str(tmp_path / "folder" / "a.csv"), type="uri_folder"), "uri_folder needs a folder"),
        (Data(name=name, path=str(tmp_path / "plain"), type="mltable"), "has no MLTable file"),
        (Data(name=name, path=str(tmp_path / "nope.csv"), type="uri_file"), "does not exist"),
        (Data(name=name, type="uri_file"), "field 'path' is required"),
        (Data(path=str(tmp_path / "folder")), "field 'name' is required"),
    ]
    for data, message in cases:
        with pytest.raises(ValidationError, match=message):
            ml_client.data.create_or_update(data)
    assert _uploads(server) == before
    with pytest.raises(NotFoundError):
        ml_client.data.get(name, version="1")


def test_symlink_leaving_an_uploaded_folder_is_not_followed(ml_client, server, tmp_path):
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("do not upload me")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "a.csv").write_text("a\n1\n")
    os.symlink(secret, data_dir / "leak.txt")
    os.symlink(secret.parent, data_dir / "leakdir")
    os.symlink(data_dir / "a.csv", data_dir / "inside.csv")
    d = ml_client.data.create_or_update(Data(name=_name("links"), path=str(data_dir)))
    stored = _local(server, d.path)
    names = sorted(p.name for p in stored.iterdir())
    assert names == ["a.csv", "inside.csv"]
    assert not any(p.is_symlink() for p in stored.rglob("*"))


# ---------------------------------------------------------------------------- CLI
def test_cli_create_list_show_archive(cli, ml_client, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "titanic.csv").write_text("a,b\n1,2\n")
    name = _name("cli")
    (tmp_path / "sub" / "data.yml").write_text(
        f"$schema: https://azuremlschemas.azureedge.net/latest/data.schema.json\nname: {name}\n"
        "type: uri_file\npath: ./titanic.csv\ndescription: from yaml\n")
    out = cli("data", "create", "--file", str(tmp_path / "sub" / "data.yml"), cwd=tmp_path, check=True).json()
    assert (out["name"], out["version"], out["type"]) == (name, "1", "uri_file")
    assert out["path"].endswith("/titanic.csv")

    out = cli("data", "create", "-f", str(tmp_path / "sub" / "data.yml"), "--version", "5", "--description", "flag",
              "--set", "tags.team=ml", check=True).json()
    assert (out["version"], out["description"], out["tags"]) == ("5", "flag", {"team": "ml"})

    out = cli("data", "create", "--name", name, "--path", "sub", "--type", "uri_folder", cwd=tmp_path,
              check=True).json()
    assert (out["version"], out["type"]) == ("6", "uri_folder")

    dup = cli("data", "create", "-f", str(tmp_path / "sub" / "data.yml"), "-v", "5")
    assert dup.returncode == 1 and "already exists" in dup.stderr and "omit the version" in dup.stderr

    tsv = cli("data", "list", "-n", name, "-o", "tsv", check=True).stdout.splitlines()
    assert [line.split("\t")[1] for line in tsv] == ["6", "5", "1"]
    missing = cli("data", "show", "-n", name, "-v", "42")
    assert missing.returncode == 1 and "versions: 1, 5, 6" in missing.stderr

    cli("data", "archive", "-n", name, "-v", "6", check=True)
    listed = cli("data", "list", "-n", name, "--archived", "-o", "json", check=True).json()
    assert [(d["version"], d["archived"]) for d in listed] == [("6", True), ("5", False), ("1", False)]
    cli("data", "restore", "-n", name, "-v", "6", check=True)
    assert cli("data", "show", "-n", name, "-l", "latest", check=True).json()["version"] == "6"


@pytest.mark.parametrize("body, expected", [
    ("name: {n}\ntype: uri_file\npath: ./a.csv\ncolour: blue\n", ["line 4", "field 'colour'", "unknown field"]),
    ("name: {n}\ntype: csv_file\npath: ./a.csv\n", ["line 2", "field 'type'", "uri_file", "mltable"]),
    ("name: {n}\ntype: uri_file\n", ["field 'path' is required"]),
    ("name: {n}\ntype: uri_file\npath: ./missing.csv\n", ["line 3", "field 'path'", "does not exist"]),
    ("name: {n}\ntype: uri_file\npath: ./folder\n", ["line 3", "uri_file needs a file"]),
    ("name: {n}\ntype: mltable\npath: ./folder\n", ["line 3", "has no MLTable file"]),
    ("name: {n}\ntags: [a, b]\npath: ./a.csv\n", ["line 2", "field 'tags'"]),
    ("name: {n}\n  type: : bad\n", ["invalid YAML at line"]),
])
def test_bad_yaml_names_file_line_and_field(ml_client, server, tmp_path, body, expected):
    from openaml import load_data

    (tmp_path / "a.csv").write_text("a\n1\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a.csv").write_text("a\n1\n")
    f = tmp_path / "data.yml"
    f.write_text(body.format(n=_name("bad")))
    before = _uploads(server)
    with pytest.raises(ValidationError) as info:
        ml_client.data.create_or_update(load_data(f))
    assert str(f) in info.value.message
    for text in expected:
        assert text in info.value.message, (text, info.value.message)
    assert _uploads(server) == before


def test_cli_bad_input_exits_1_naming_file_and_line(cli, tmp_path):
    f = tmp_path / "data.yml"
    f.write_text("name: x\ntype: uri_file\npath: ./a.csv\ncolour: blue\n")
    r = cli("data", "create", "--file", str(f))
    err = " ".join(r.stderr.split())
    assert r.returncode == 1 and "data.yml, line 4: field 'colour': unknown field" in err, err
    r = cli("data", "create", "--name", "x")
    assert r.returncode == 1 and "--file" in r.stderr


# ---------------------------------------------------------------------------- conformance
@pytest.fixture
def conformance_dir(tmp_path: Path) -> Path:
    """tests/conformance/assets/data with iris.csv copied where the YAML files expect it."""
    dest = tmp_path / "data"
    shutil.copytree(CONFORMANCE, dest)
    (dest / "sample-data").mkdir(exist_ok=True)
    shutil.copy(TEST_DATA / "iris.csv", dest / "sample-data" / "iris.csv")
    shutil.copy(TEST_DATA / "iris.csv", dest / "iris-mltable" / "iris.csv")
    return dest


@pytest.mark.parametrize("yml, type_, tail", [
    ("local-file.yml", "uri_file", "/iris.csv"),
    ("local-folder.yml", "uri_folder", "/sample-data"),
    ("local-mltable.yml", "mltable", "/iris-mltable"),
])
def test_conformance_azureml_examples_data_assets(cli, ml_client, server, conformance_dir, yml, type_, tail):
    out = cli("data", "create", "--file", str(conformance_dir / yml), check=True).json()
    assert out["type"] == type_
    assert out["path"].endswith(tail)
    assert ml_client.data.get(out["name"], version=out["version"]).path == out["path"]
    local = _local(server, out["path"])
    if type_ == "uri_file":
        assert local.read_bytes() == (TEST_DATA / "iris.csv").read_bytes()
    elif type_ == "uri_folder":
        assert (local / "iris.csv").is_file()
    else:
        import mltable

        assert sorted(p.name for p in local.iterdir()) == ["MLTable", "iris.csv"]
        rows = len((TEST_DATA / "iris.csv").read_text().splitlines())
        assert len(mltable.load(str(local)).to_pandas_dataframe()) == rows


def test_file_upload_after_a_folder_holding_only_that_file(ml_client, tmp_path):
    """Regression: a file and a one-file folder had the same upload hash and the file was lost."""
    from openaml.entities import Data

    folder = tmp_path / "only"
    folder.mkdir()
    (folder / "iris.csv").write_text("a,b\n1,2\n# unique-to-this-test\n")
    ml_client.data.create_or_update(Data(name="only-folder", type="uri_folder", path=str(folder)))
    f = ml_client.data.create_or_update(Data(name="only-file", type="uri_file", path=str(folder / "iris.csv")))
    assert f.path.endswith("/iris.csv")


def test_negative_or_odd_versions_are_refused():
    """Regression: data version -1 was accepted."""
    from openaml.entities import Data, load_entity
    from openaml.errors import ValidationError

    with pytest.raises(ValidationError, match="version"):
        load_entity(Data, data={"name": "x", "version": -1, "path": "p"})
    with pytest.raises(ValidationError, match="version"):
        load_entity(Data, data={"name": "x", "version": "../1", "path": "p"})
    assert load_entity(Data, data={"name": "x", "version": 3, "path": "p"}).version == "3"


def test_unknown_field_lists_the_allowed_fields_and_the_closest() -> None:
    """An unknown field names the fields allowed at that place and the closest one (it said only
    'allowed fields are listed in the ... schema'), through nested models and tagged unions."""
    from openaml.entities._base import load_entity
    from openaml.entities._sweep import SweepJob

    with pytest.raises(ValidationError) as info:
        load_entity(SweepJob, data={
            "type": "sweep", "trial": {"command": "python t.py"}, "sampling_algorithm": "random",
            "search_space": {}, "objective": {"goal": "maximize", "primary_metric": "m"},
            "limits": {"max_total_trials": 2}, "early_termination": {"type": "bandit", "slack_factr": 0.1}})
    msg = str(info.value)
    assert "field 'early_termination.bandit.slack_factr': unknown field; did you mean 'slack_factor'?" in msg
    assert "(allowed here: delay_evaluation, evaluation_interval, slack_amount, slack_factor, type)" in msg
