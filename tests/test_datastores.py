"""Datastores: azure-ai-ml's datastore and credential classes, every Azure type from YAML, secrets
never shown back (issue 9 item 4 and 6)."""

from __future__ import annotations

import json
import textwrap

import pytest

from openaml import command
from openaml.entities import (
    AccountKeyConfiguration,
    AzureBlobDatastore,
    AzureDataLakeGen1Datastore,
    AzureDataLakeGen2Datastore,
    AzureFileDatastore,
    CertificateConfiguration,
    NoneCredentialConfiguration,
    SasTokenConfiguration,
    ServicePrincipalConfiguration,
)
from openaml.errors import ValidationError


def test_sdk_classes_with_credential_objects(ml_client):
    # the book's accounts are not reachable from here: registered unchecked (Azure's skipValidation)
    blob = AzureBlobDatastore(name="fid_blob", description="book ch 3", account_name="acct",
                              container_name="data", credentials=AccountKeyConfiguration(account_key="SECRET-KEY"))
    assert blob.type == "azure_blob" and blob.endpoint == "core.windows.net" and blob.protocol == "https"
    with pytest.warns(UserWarning, match="fid_blob.*without checking"):
        got = ml_client.datastores.create_or_update(blob, skip_validation=True)
    assert isinstance(got, AzureBlobDatastore)
    assert (got.account_name, got.container_name) == ("acct", "data")
    assert isinstance(got.credentials, AccountKeyConfiguration) and got.credentials.account_key is None
    files = AzureFileDatastore(name="fid_file", account_name="acct", file_share_name="share",
                               credentials=SasTokenConfiguration(sas_token="SAS-SECRET"))
    assert ml_client.datastores.create_or_update(files).file_share_name == "share"
    gen2 = AzureDataLakeGen2Datastore(
        name="fid_gen2", account_name="acct", filesystem="fs",
        credentials=ServicePrincipalConfiguration(tenant_id="t", client_id="c", client_secret="SP-SECRET"))
    got2 = ml_client.datastores.get(ml_client.datastores.create_or_update(gen2).name)
    assert isinstance(got2, AzureDataLakeGen2Datastore) and got2.filesystem == "fs"
    assert got2.credentials.tenant_id == "t" and got2.credentials.client_id == "c"
    assert got2.credentials.client_secret is None
    gen1 = AzureDataLakeGen1Datastore(name="fid_gen1", store_name="lake",
                                      credentials=CertificateConfiguration(certificate="CERT", thumbprint="th"))
    assert ml_client.datastores.create_or_update(gen1).store_name == "lake"
    ident = AzureBlobDatastore(name="fid_ident", account_name="a", container_name="c",
                               credentials=NoneCredentialConfiguration())
    with pytest.warns(UserWarning, match="fid_ident.*without checking"):
        assert ml_client.create_or_update(ident, skip_validation=True).name == "fid_ident"
    # a get() result sent back keeps the stored secret (it is never returned, so cannot be resent)
    again = ml_client.datastores.get("fid_blob")
    again.description = "changed"
    with pytest.warns(UserWarning):
        ml_client.datastores.create_or_update(again, skip_validation=True)
    assert ml_client.datastores.get("fid_blob").description == "changed"
    with pytest.raises(Exception, match="container_name"):
        AzureBlobDatastore(name="x", account_name="a")


YAMLS = {
    "azure_blob": "account_name: acct\ncontainer_name: c\ncredentials:\n  account_key: SECRET-1\n",
    "azure_file": "account_name: acct\nfile_share_name: s\ncredentials:\n  sas_token: SECRET-2\n",
    "azure_data_lake_gen1": "store_name: lake\ncredentials:\n  tenant_id: t\n  client_id: c\n  client_secret: SECRET-3\n",
    "azure_data_lake_gen2": ("account_name: acct\nfilesystem: fs\ncredentials:\n  tenant_id: t\n  client_id: c\n"
                             "  certificate: SECRET-4\n  thumbprint: th\n"),
}


@pytest.mark.parametrize("kind", sorted(YAMLS))
@pytest.mark.parametrize("with_credentials", [True, False])
def test_cli_create_every_azure_type(cli, tmp_path, kind, with_credentials):
    body = YAMLS[kind] if with_credentials else YAMLS[kind].split("credentials:")[0]
    name = f"y_{kind}_{int(with_credentials)}"
    f = tmp_path / "ds.yml"
    f.write_text(f"$schema: https://azuremlschemas.azureedge.net/latest/azureBlob.schema.json\nname: {name}\n"
                 f"type: {kind}\ndescription: from yaml\n" + body)
    # the accounts are not reachable from here: unchecked (a no-op for the types kept as metadata only)
    created = cli("datastore", "create", "--file", str(f), "--skip-validation", check=True)
    shown = cli("datastore", "show", "--name", name, check=True)
    for out in (created, shown):
        assert "SECRET" not in out.stdout
        d = out.json()
        assert d["type"] == kind and d["description"] == "from yaml"
        if with_credentials:
            assert d["credentials"]["type"] in ("account_key", "sas", "service_principal", "certificate")
        else:
            assert "credentials" not in d
    listed = cli("datastore", "list", "-o", "json", check=True).json()
    assert name in {d["name"] for d in listed}


def test_yaml_missing_field_named(cli, tmp_path):
    f = tmp_path / "ds.yml"
    f.write_text(textwrap.dedent("""\
        name: bad_blob
        type: azure_blob
        account_name: acct
        credentials:
          account_key: k
    """))
    r = cli("datastore", "create", "--file", str(f))
    assert r.returncode != 0 and "container_name" in r.stderr
    f.write_text("name: bad_cred\ntype: azure_blob\naccount_name: a\ncontainer_name: c\ncredentials:\n  password: x\n")
    r = cli("datastore", "create", "--file", str(f))
    assert r.returncode != 0 and "account_key" in r.stderr and "sas_token" in r.stderr


def test_load_datastore_gives_typed_class(tmp_path):
    from openaml import load_datastore

    f = tmp_path / "ds.yml"
    f.write_text("name: t\ntype: azure_file\n" + YAMLS["azure_file"])
    ds = load_datastore(f)
    assert isinstance(ds, AzureFileDatastore) and isinstance(ds.credentials, SasTokenConfiguration)
    assert ds.credentials.sas_token == "SECRET-2"
    f.write_text("name: t\ntype: azure_file\naccount_name: a\n")
    with pytest.raises(ValidationError, match="file_share_name"):
        load_datastore(f)


def test_create_or_update_dispatches_every_entity_type(ml_client, tmp_path):
    from openaml import load_component
    from openaml.entities import CommandComponent, Data, Environment

    (tmp_path / "c.yml").write_text(textwrap.dedent("""\
        $schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
        name: fid_dispatch
        type: command
        version: "1"
        inputs:
          n: {type: integer, default: 1}
        command: echo ${{inputs.n}}
        environment: azureml:AzureML-sklearn-1.5@latest
    """))
    comp = load_component(tmp_path / "c.yml")
    assert isinstance(comp, CommandComponent)
    got = ml_client.create_or_update(comp)
    assert (got.name, got.version) == ("fid_dispatch", "1")
    assert ml_client.begin_create_or_update(comp).result().name == "fid_dispatch"
    (tmp_path / "x.txt").write_text("x")
    assert ml_client.create_or_update(Data(name="fid_dispatch_data", path=str(tmp_path / "x.txt"),
                                           type="uri_file")).version == "1"
    assert ml_client.create_or_update(Environment(name="fid_dispatch_env", image="python:3.11-slim")).name
    from openaml.entities import AmlCompute

    assert ml_client.begin_create_or_update(AmlCompute(name="fid-cluster", max_instances=1)).result().name \
        == "fid-cluster"
    with pytest.raises(ValidationError, match="does not handle int; it takes one of: Job, Data"):
        ml_client.create_or_update(3)


def test_local_port_refuses_symlinks_leaving_the_folder_and_skips_links(tmp_path):
    """The local backend's own rule besides the contract: links out are refused, links never copied."""
    import os

    import pytest

    from openaml.datastores import open_datastore
    from openaml.errors import PathEscapeError

    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("s")
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "ok.txt").write_text("ok")
    os.symlink(secret, folder / "out")
    os.symlink(secret / "key.txt", folder / "out.txt")
    port = open_datastore({"name": "links", "type": "local", "path": str(folder)})
    for call in (lambda: port.info("out/key.txt"), lambda: port.open("out.txt", "rb"),
                 lambda: port.get("out", tmp_path / "o"), lambda: port.local_path("out/key.txt")):
        with pytest.raises(PathEscapeError, match="azureml://datastores/links/paths/out.* leaves its folder"):
            call()
    # listings and copies neither show nor follow links
    assert [e["name"] for e in port.ls("")] == ["ok.txt"]
    assert list(port.walk("")) == [("ok.txt", 2)]
    assert port.get("", tmp_path / "copy") == 1 and sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["ok.txt"]
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    os.symlink(secret / "key.txt", src / "leak.txt")
    assert port.put(src, "up") == 1 and not port.exists("up/leak.txt")


def test_local_port_get_keeps_inside_links_and_empty_folders(tmp_path, caplog):
    """Regression: download mode dropped links and empty folders that a read-only mount shows; a link
    pointing outside the folder is left out with one log line naming its URI."""
    import logging
    import os

    from openaml.datastores import open_datastore

    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    folder = tmp_path / "ds" / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "empty" / "deeper").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    os.symlink("sub/a.txt", folder / "alias.txt")
    os.symlink(folder / "sub", folder / "subdir")  # absolute, but inside
    os.symlink(secret, folder / "sub" / "leak.txt")
    port = open_datastore({"name": "fid", "type": "local", "path": str(tmp_path / "ds")})
    dest = tmp_path / "got"
    with caplog.at_level(logging.WARNING, logger="openaml.datastores"):
        assert port.get("data", dest) == 1
    assert (dest / "empty" / "deeper").is_dir()
    assert (dest / "alias.txt").is_symlink() and os.readlink(dest / "alias.txt") == "sub/a.txt"
    assert (dest / "alias.txt").read_text() == "a"
    assert (dest / "subdir").is_symlink() and os.readlink(dest / "subdir") == "sub"
    assert (dest / "subdir" / "a.txt").read_text() == "a"
    assert not os.path.lexists(dest / "sub" / "leak.txt")
    lines = [r.getMessage() for r in caplog.records if r.name == "openaml.datastores"]
    assert len(lines) == 1 and "azureml://datastores/fid/paths/data/sub/leak.txt" in lines[0], lines


def test_local_port_put_move_renames_into_place(tmp_path):
    from openaml.datastores import open_datastore

    folder = tmp_path / "ds"
    port = open_datastore({"name": "mv", "type": "local", "path": str(folder)})
    stage = tmp_path / "stage"
    (stage / "s").mkdir(parents=True)
    (stage / "s" / "f.txt").write_text("f")
    assert port.put(stage, "x/y", move=True) == 1
    assert not stage.exists() and (folder / "x" / "y" / "s" / "f.txt").read_text() == "f"
    # onto an existing folder: merged, the source consumed
    (stage / "g.txt").parent.mkdir(parents=True)
    (stage / "g.txt").write_text("g")
    assert port.put(stage, "x/y", move=True) == 1
    assert not stage.exists() and sorted(p.name for p in (folder / "x" / "y").iterdir()) == ["g.txt", "s"]


def test_job_inputs_and_outputs_go_through_the_datastore_port(ml_client, server, tmp_path):
    """The runner's spec names each input's datastore (non-secret definition) and path, not a server path;
    ro_mount and download both read it; an output lands in a registered local datastore."""
    import json
    import uuid

    from openaml import Input, Output, command
    from openaml.entities import Datastore

    folder = tmp_path / "shared-store"
    (folder / "in").mkdir(parents=True)
    (folder / "in" / "n.txt").write_text("41")
    ds = f"port_{uuid.uuid4().hex[:6]}"
    ml_client.datastores.create_or_update(Datastore(name=ds, type="local", path=str(folder)))
    job = command(command="cat ${{inputs.a}}/n.txt ${{inputs.b}}/n.txt > ${{outputs.o}}/both.txt",
                  inputs={"a": Input(type="uri_folder", path=f"azureml://datastores/{ds}/paths/in", mode="ro_mount"),
                          "b": Input(type="uri_folder", path=f"azureml://datastores/{ds}/paths/in/",
                                     mode="download")},
                  outputs={"o": Output(type="uri_folder", path=f"azureml://datastores/{ds}/paths/out/${{{{name}}}}")},
                  environment="AzureML-sklearn-1.5@latest")
    name = ml_client.jobs.create_or_update(job).name
    assert ml_client.jobs.wait(name, timeout=120).status == "Completed", ml_client.jobs.get_raw(name)["log_tail"]
    assert (folder / "out" / name / "both.txt").read_text() == "4141"
    # the runner's spec (GET .../runner/spec) is built from the job row's runtime
    from openaml._settings import Settings
    from openaml.store import MetadataStore

    store = MetadataStore(Settings(workspace=server.path).metadata_url).start()
    try:
        spec = store.get_job(name)["runtime"]
    finally:
        store.close()
    for key in ("a", "b"):
        inp = spec["inputs"][key]
        assert inp["datastore"] == {"name": ds, "type": "local", "path": str(folder.resolve())}
        assert inp["path"] == "in" and "local_path" not in inp
        assert "credentials" not in json.dumps(inp)
    assert spec["outputs"]["o"]["datastore"]["name"] == ds and spec["outputs"]["o"]["path"] == f"out/{name}"
    # the download-mode copy lives in the job's own inputs folder
    assert (server.path / "jobs" / name / "inputs" / "b" / "in" / "n.txt").read_text() == "41"


def test_input_on_a_metadata_only_datastore_is_refused_naming_it(ml_client):
    from openaml import Input, command
    from openaml.entities import AccountKeyConfiguration, AzureFileDatastore

    ml_client.datastores.create_or_update(AzureFileDatastore(
        name="file_meta", account_name="acct", file_share_name="c",
        credentials=AccountKeyConfiguration(account_key="SECRET")))
    job = command(command="ls ${{inputs.d}}", environment="AzureML-sklearn-1.5@latest",
                  inputs={"d": Input(type="uri_folder", path="azureml://datastores/file_meta/paths/x")})
    with pytest.raises(ValidationError) as info:
        ml_client.jobs.create_or_update(job)
    msg = info.value.message
    assert "'file_meta'" in msg and "azure_file" in msg and "supported datastore types: azure_blob, local, s3" in msg
    assert "SECRET" not in msg


def test_input_on_an_unreachable_blob_account_is_refused_naming_it(ml_client):
    """The book's account (not reachable from here) is refused unless registered unchecked
    (``skip_validation``), with a warning; a job reading it is then refused at submission naming the
    datastore and the error, without the key."""
    from openaml import Input, command
    from openaml.entities import AccountKeyConfiguration, AzureBlobDatastore

    far = AzureBlobDatastore(name="blob_far", account_name="acct", container_name="c",
                             credentials=AccountKeyConfiguration(account_key="U0VDUkVULUtFWQ=="))
    with pytest.raises(ValidationError, match="blob_far.*field 'account_name'.*cannot be reached.*skip-validation"):
        ml_client.datastores.create_or_update(far)
    with pytest.warns(UserWarning, match="blob_far.*without checking"):
        ml_client.datastores.create_or_update(far, skip_validation=True)
    job = command(command="ls ${{inputs.d}}", environment="AzureML-sklearn-1.5@latest",
                  inputs={"d": Input(type="uri_folder", path="azureml://datastores/blob_far/paths/x")})
    with pytest.raises(ValidationError) as info:
        ml_client.jobs.create_or_update(job)
    msg = info.value.message
    assert "'blob_far'" in msg and "azure_blob" in msg and "acct.blob.core.windows.net" in msg
    assert "U0VDUkVULUtFWQ==" not in msg


def test_code_upload_says_which_links_it_leaves_out(cli, tmp_path):
    """Regression: a code upload dropped links silently; the client now warns, naming them."""
    import os

    (tmp_path / "outside.txt").write_text("o")
    code = tmp_path / "src"
    (code / "pkg").mkdir(parents=True)
    (code / "main.py").write_text("print('hi')\n")
    os.symlink(tmp_path / "outside.txt", code / "leak.txt")
    os.symlink(code / "pkg", code / "pkglink")
    os.symlink("main.py", code / "alias.py")  # inside: uploaded as a copy, not named
    (tmp_path / "job.yml").write_text("command: python main.py\ncode: src\nenvironment: azureml:AzureML-sklearn-1.5@latest\n")
    r = cli("job", "create", "-f", str(tmp_path / "job.yml"), "-o", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "2 link(s) left out of the upload" in r.stderr and "leak.txt" in r.stderr and "pkglink" in r.stderr, r.stderr
    assert "alias.py" not in r.stderr


def test_client_errors_are_4xx_in_the_api_shape(server, ml_client, tmp_path):
    """Regression: a negative log offset and a datastore path that is a file gave 500s; unknown routes
    answered FastAPI's {"detail": "Not Found"} instead of the API's {"error": ...}."""
    import httpx

    api = f"{server.url}/api/v1"
    job = command(command="echo hi", environment="AzureML-sklearn-1.5@latest")
    name = ml_client.jobs.create_or_update(job).name
    r = httpx.get(f"{api}/jobs/{name}/logs", params={"offset": -5}, timeout=60)
    assert r.status_code == 400 and "field 'offset'" in r.json()["error"]["message"], r.text
    afile = tmp_path / "a-file.txt"
    afile.write_text("x")
    r = httpx.put(f"{api}/datastores/ds_file", json={"name": "ds_file", "type": "local", "path": str(afile)},
                  timeout=60)
    assert r.status_code == 400 and str(afile) in r.json()["error"]["message"], r.text
    assert httpx.get(f"{api}/datastores/ds_file", timeout=60).status_code == 404
    r = httpx.get(f"{api}/no-such-thing", timeout=60)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    assert "/api/v1/no-such-thing" in r.json()["error"]["message"]
    r = httpx.delete(f"{api}/jobs", timeout=60)
    assert r.status_code == 405 and "error" in r.json(), r.text


def test_download_mode_input_shows_what_ro_mount_shows(ml_client, tmp_path):
    """Regression: a download-mode input lost links and empty folders that ro_mount keeps."""
    import os
    import uuid

    from openaml import Input
    from openaml.entities import Datastore

    folder = tmp_path / "fidelity-store"
    (folder / "in" / "empty").mkdir(parents=True)
    (folder / "in" / "n.txt").write_text("41")
    os.symlink("n.txt", folder / "in" / "alias.txt")
    ds = f"fid_{uuid.uuid4().hex[:6]}"
    ml_client.datastores.create_or_update(Datastore(name=ds, type="local", path=str(folder)))
    check = ("cd {d} && test -d empty && test -L alias.txt && cat alias.txt && ls -A | sort | tr '\\n' ' '")
    outs = {}
    for mode in ("ro_mount", "download"):
        job = command(command=check.format(d="${{inputs.d}}"),
                      inputs={"d": Input(type="uri_folder", path=f"azureml://datastores/{ds}/paths/in", mode=mode)},
                      environment="AzureML-sklearn-1.5@latest")
        name = ml_client.jobs.create_or_update(job).name
        final = ml_client.jobs.wait(name, timeout=120)
        assert final.status == "Completed", (mode, ml_client.jobs.get_raw(name)["log_tail"])
        outs[mode] = ml_client.jobs.get_raw(name)["log_tail"][-1]  # the command's line (after any env build)
    assert outs["download"] == outs["ro_mount"] == "41alias.txt empty n.txt ", outs


def test_local_datastore_on_the_workspace_secrets_is_refused(ml_client, server):
    """The workspace folder (or its jobs/, code/, ...) as a local datastore would hand server.token and
    secret.key to every job reading it: refused with the path and the fix; its datastores/ is fine."""
    import uuid

    from openaml.entities import Datastore

    root = server.path.resolve()
    for path in (root, root / "jobs"):
        name = f"ws_{uuid.uuid4().hex[:6]}"
        with pytest.raises(ValidationError) as info:
            ml_client.datastores.create_or_update(Datastore(name=name, type="local", path=str(path)))
        msg = str(info.value)
        assert repr(str(path)) in msg and str(root / "datastores") in msg and "secret.key" in msg, msg
    ok = root / "datastores" / f"mine_{uuid.uuid4().hex[:6]}"
    name = f"ok_{uuid.uuid4().hex[:6]}"
    got = ml_client.datastores.create_or_update(Datastore(name=name, type="local", path=str(ok)))
    assert ok.is_dir() and ml_client.datastores.get(name).name == name and got.name == name


def test_delete_removes_the_registration_not_the_files(ml_client, cli, tmp_path):
    """Issue h10 item 1: ``datastores.delete`` and ``datastore delete`` (as azure-ai-ml and az ml)
    remove the registration only; refused, naming them, while unarchived data asset versions point
    into it; an unknown name is a 404 listing the datastores."""
    import uuid

    from openaml.entities import Data, Datastore
    from openaml.errors import ConflictError, NotFoundError

    folder = tmp_path / "kept"
    folder.mkdir()
    (folder / "rows.csv").write_text("a\n1\n")
    ds = f"del_{uuid.uuid4().hex[:6]}"
    ml_client.datastores.create_or_update(Datastore(name=ds, type="local", path=str(folder)))
    asset = f"on-{ds}".replace("_", "-")
    ml_client.data.create_or_update(Data(name=asset, type="uri_file",
                                         path=f"azureml://datastores/{ds}/paths/rows.csv"))
    with pytest.raises(ConflictError) as info:
        ml_client.datastores.delete(ds)
    msg = info.value.message
    assert f"datastore '{ds}' is used by 1 data asset version ({asset}:1)" in msg and "archive them first" in msg, msg
    r = cli("datastore", "delete", "--name", ds)
    assert r.returncode != 0 and f"{asset}:1" in r.stderr, r.stderr
    assert ml_client.datastores.get(ds).name == ds  # nothing removed

    ml_client.data.archive(asset, version="1")  # an archived version does not hold it
    r = cli("datastore", "delete", "--name", f"azureml:{ds}")  # azure-ai-ml's reference form too
    assert r.returncode == 0 and f"deleted datastore azureml:{ds}" in r.stderr, r.stderr
    with pytest.raises(NotFoundError, match=rf"datastore '{ds}' not found; datastores: .*workspaceblobstore"):
        ml_client.datastores.get(ds)
    assert (folder / "rows.csv").read_text() == "a\n1\n"  # the files stay
    # registered again, the same files are there
    ml_client.datastores.create_or_update(Datastore(name=ds, type="local", path=str(folder)))
    ml_client.datastores.delete(ds)
    assert ds not in [d.name for d in ml_client.datastores.list()]
    with pytest.raises(NotFoundError, match=rf"datastore '{ds}' not found; datastores: .*workspaceblobstore") as nf:
        ml_client.datastores.delete(ds)
    assert nf.value.http_status == 404
    r = cli("datastore", "delete", "--name", "no_such_store")
    assert r.returncode != 0 and "datastore 'no_such_store' not found; datastores:" in r.stderr, r.stderr


def test_delete_refuses_the_workspace_and_the_default_datastore(ml_client, tmp_path):
    """The workspace's own ``workspaceblobstore`` is never deleted; the default datastore only once
    another is the default (the message says how)."""
    import uuid

    from openaml.entities import Datastore
    from openaml.errors import ConflictError

    with pytest.raises(ConflictError, match="'workspaceblobstore' is the workspace's own folder .*cannot be deleted"):
        ml_client.datastores.delete("workspaceblobstore")
    ds = f"dflt_{uuid.uuid4().hex[:6]}"
    ml_client.datastores.create_or_update(Datastore(name=ds, type="local", path=str(tmp_path), is_default=True))
    try:
        assert ml_client.datastores.get_default().name == ds
        with pytest.raises(ConflictError) as info:
            ml_client.datastores.delete(ds)
        msg = info.value.message
        assert f"datastore '{ds}' is the workspace's default datastore and cannot be deleted" in msg, msg
        assert "make another one the default first" in msg and "is_default: false" in msg, msg
    finally:  # the default back to workspaceblobstore: the other tests upload there
        ml_client.datastores.create_or_update(Datastore(name=ds, type="local", path=str(tmp_path), is_default=False))
    assert ml_client.datastores.get_default().name == "workspaceblobstore"
    ml_client.datastores.delete(ds)
    assert ds not in [d.name for d in ml_client.datastores.list()]


def test_azureml_prefix_names_a_datastore(ml_client, cli, tmp_path):
    """Issue h10 item 5: ``datastore: azureml:<name>`` (azure-ai-ml's reference form, as for computes)
    names the datastore ``<name>`` in a data asset (SDK and YAML) and in a job output."""
    import uuid

    from openaml import Output, command
    from openaml.entities import Data, Datastore

    ds = f"pfx_{uuid.uuid4().hex[:6]}"
    ml_client.datastores.create_or_update(Datastore(name=ds, type="local", path=str(tmp_path / "store")))
    f = tmp_path / "x.csv"
    f.write_text("a\n1\n")
    got = ml_client.data.create_or_update(Data(name=f"pfx-{ds[4:]}", type="uri_file", path=str(f),
                                               datastore=f"azureml:{ds}"))
    assert got.path.startswith(f"azureml://datastores/{ds}/paths/LocalUpload/"), got.path
    yml = tmp_path / "data.yml"
    yml.write_text(f"name: pfx-yaml-{ds[4:]}\ntype: uri_file\npath: {f}\ndatastore: azureml:{ds}\n")
    r = cli("data", "create", "--file", str(yml), "-o", "json")
    assert r.returncode == 0, r.stderr
    assert r.json()["path"].startswith(f"azureml://datastores/{ds}/paths/LocalUpload/"), r.stdout
    job = command(command="echo hi > ${{outputs.o}}/hi.txt", environment="AzureML-sklearn-1.5@latest",
                  outputs={"o": Output(type="uri_folder", datastore=f"azureml:{ds}")})
    name = ml_client.jobs.create_or_update(job).name
    assert ml_client.jobs.wait(name, timeout=120).status == "Completed", ml_client.jobs.get_raw(name)["log_tail"]
    assert (tmp_path / "store" / "azureml" / name / "o" / "hi.txt").read_text().strip() == "hi"


def test_blob_show_says_the_protocol_of_a_url_endpoint(ml_client, cli):
    """Issue h10 item 4: an azure_blob datastore whose ``endpoint`` is a URL (Azurite) is reached with
    that URL's scheme: show says ``protocol: http``, not the class's default ``https``."""
    blob = AzureBlobDatastore(name="proto_url", account_name="devstoreaccount1", container_name="c",
                              endpoint="http://127.0.0.1:9/devstoreaccount1",
                              credentials=AccountKeyConfiguration(account_key="U0VDUkVU"))
    assert blob.protocol == "https"  # azure-ai-ml's default, stored as sent
    with pytest.warns(UserWarning, match="without checking"):
        assert ml_client.datastores.create_or_update(blob, skip_validation=True).protocol == "http"
    assert ml_client.datastores.get("proto_url").protocol == "http"
    shown = cli("datastore", "show", "--name", "proto_url", check=True).json()
    assert shown["protocol"] == "http" and shown["endpoint"] == "http://127.0.0.1:9/devstoreaccount1"
    # the round trip (a get() result sent back) keeps working
    with pytest.warns(UserWarning):
        ml_client.datastores.create_or_update(ml_client.datastores.get("proto_url"), skip_validation=True)
    assert ml_client.datastores.get("proto_url").protocol == "http"


def test_datastore_help_says_which_types_hold_files(cli):
    """Issue h10 item 3: the help no longer says Azure types are "kept as metadata" wholesale: the
    types with a backend (openaml.datastores.BACKENDS) are the ones said to hold files."""
    from openaml.cli._datastore import CREATE_HELP
    from openaml.datastores import BACKENDS

    first, rest = CREATE_HELP.split("\n\n", 1)
    for kind in BACKENDS:
        assert kind in first, (kind, first)
    metadata = rest.split("kept as metadata")[0].rsplit(".", 1)[-1]
    assert "azure_blob" not in metadata and "azure_file" in metadata, metadata
    r = cli("datastore", "create", "--help", check=True)
    assert "azure_blob (their files are read and written here)" in " ".join(r.stdout.split()), r.stdout


def test_an_empty_or_path_like_name_is_refused_not_a_success(ml_client, cli):
    """Regression (new-user check): ``datastore delete -n ""`` printed "deleted" (the request went to the
    list's URL, redirected) and ``datastore show -n ""`` raised a traceback; ``show`` refused the
    ``azureml:`` form that ``delete`` takes."""
    from openaml.errors import ValidationError

    before = [d.name for d in ml_client.datastores.list()]
    for verb in ("delete", "show"):
        for bad in ("", "azureml:", "a/b"):
            r = cli("datastore", verb, "-n", bad)
            assert r.returncode != 0, (verb, bad, r.stdout)
            assert "give a datastore's name" in r.stderr and "Traceback" not in r.stderr, r.stderr
    with pytest.raises(ValidationError, match="give a datastore's name"):
        ml_client.datastores.delete("")
    assert [d.name for d in ml_client.datastores.list()] == before
    assert ml_client.datastores.get("azureml:workspaceblobstore").name == "workspaceblobstore"


def test_a_datastore_name_that_cannot_be_in_a_uri_is_refused(ml_client, cli, tmp_path):
    """Regression (new-user check): ``name: "bad name"`` was stored, and data assets pointed into it."""
    for bad in ("bad name", "-lead", "a.b", "x" * 256):
        f = tmp_path / "ds.yml"
        f.write_text(f"name: {json.dumps(bad)}\ntype: local\npath: {tmp_path}\n")
        r = cli("datastore", "create", "--file", str(f))
        assert r.returncode != 0 and "use letters, digits, '_' and '-'" in r.stderr, (bad, r.stderr)
    assert not any(d.name in ("bad name", "-lead", "a.b") for d in ml_client.datastores.list())


def test_s3_credentials_that_are_not_a_mapping_give_one_error_naming_the_keys(cli, tmp_path):
    """Regression (new-user check): ``credentials: oops`` gave six errors, one per credential class."""
    f = tmp_path / "s3.yml"
    f.write_text("name: s3_oops\ntype: s3\nbucket: b\ncredentials: oops\n")
    r = cli("datastore", "create", "--file", str(f))
    assert r.returncode == 1
    assert " ".join(r.stderr.split()) == (
        f"ERROR: {f}, line 4: field 'credentials': Value error, credentials must be a mapping, not a str; give a "
        "mapping with access_key_id and secret_access_key (+ session_token for temporary keys), or no credentials "
        "for boto's default chain (got 'oops')")


def test_an_unknown_field_of_a_local_datastore_lists_the_local_fields_only(cli, server, tmp_path):
    """Regression (new-user check): an unknown field of a local datastore was answered with every datastore
    type's fields ("did you mean 'bucket'?"); another type's field (``bucket``) was taken and stored."""
    import httpx

    local = "(allowed here: description, is_default, name, path, properties, tags, type)"
    f = tmp_path / "local.yml"
    f.write_text(f"name: loc_typo\ntype: local\npath: {server.path.resolve() / 'datastores'}\nbukket: b\n")
    r = cli("datastore", "create", "--file", str(f))
    assert r.returncode == 1
    assert " ".join(r.stderr.split()) == f"ERROR: {f}, line 4: field 'bukket': unknown field {local} (got 'b')"
    f.write_text(f"name: loc_typo\npath: {server.path.resolve() / 'datastores'}\n")  # no type: local, the default
    r = cli("datastore", "create", "--file", str(f), "--set", "pathh=/x")  # named on its --set
    assert " ".join(r.stderr.split()) == (f"ERROR: --set pathh=/x: field 'pathh': unknown field; did you mean "
                                          f"'path'? {local} (got '/x')")
    api = f"{server.url}/api/v1"  # the server says the same to a client that sends another type's field
    r = httpx.put(f"{api}/datastores/loc_typo", timeout=30,
                  json={"name": "loc_typo", "type": "local", "path": str(server.path / "datastores"), "bucket": "b"})
    assert r.status_code == 400 and r.json()["error"]["message"] == (
        f"datastore: field 'bucket': unknown field {local} (got 'b')")
    assert cli("datastore", "show", "--name", "loc_typo").returncode != 0  # nothing stored


def test_a_local_datastore_on_a_missing_folder_says_that_it_made_it(cli, server, tmp_path):
    """Regression (new-user check): a local datastore on a folder that does not exist was registered
    silently (the folder made). Making it is kept (scratch datastores under the workspace's datastores/
    rely on it, see test_local_datastore_on_the_workspace_secrets_is_refused), but the answer says so,
    naming the field and the path, so that a mistyped path shows."""
    import uuid

    name = f"mk_{uuid.uuid4().hex[:6]}"
    missing = server.path.resolve() / "datastores" / name / "typo"
    f = tmp_path / "ds.yml"
    f.write_text(f"name: {name}\ntype: local\npath: {missing}\n")
    r = cli("datastore", "create", "--file", str(f), check=True)
    assert (f"WARNING: datastore {name!r}: field 'path': folder {str(missing)!r} did not exist and was created (empty); "
            f"if the path is mistyped, delete the datastore (openaml datastore delete --name {name}; the folder stays) "
            "and register it with the right path") in " ".join(r.stderr.split()), r.stderr
    assert missing.is_dir() and r.json()["path"] == str(missing)
    again = cli("datastore", "create", "--file", str(f), check=True)  # the folder exists now: no warning
    assert "WARNING" not in again.stderr, again.stderr
