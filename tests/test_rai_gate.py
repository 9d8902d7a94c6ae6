"""The RAI gate on promotion: a model version's score card verdict (tags derived by the server from
``rai.scorecard``) and the workspace policy that makes a protected tag or stage, and deployments,
require a passing verdict. A server of its own (the policy is workspace-wide), the real SDK and CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openaml.errors import ConflictError, NotFoundError, ValidationError
from tests.conftest import start_server
from tests.rai_fixture import write_dashboard

MODEL = "gated"


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Its own server; a job whose outputs hold a passing (``passing``) and a failing (``failing``: the
    demographic parity difference above 0.05) dashboard score card, and one without (``empty``)."""
    from openaml import MLClient

    root = tmp_path_factory.mktemp("rai-gate")
    handle = start_server(root / "ws", name="rai-gate")
    ml = MLClient(workspace=handle.url)
    src = root / "src"
    write_dashboard(src / "pass", MODEL, "1")
    write_dashboard(src / "fail", MODEL, "2", dp_threshold=0.05)
    (src / "copy.py").write_text(textwrap.dedent("""\
        import shutil, sys
        shutil.copy("pass/dashboard.json", sys.argv[1]); shutil.copy("fail/dashboard.json", sys.argv[2])
        """))
    (root / "job.yml").write_text(textwrap.dedent("""\
        type: command
        code: src
        command: python copy.py ${{outputs.passing}} ${{outputs.failing}}
        outputs: {passing: {type: uri_folder}, failing: {type: uri_folder}, empty: {type: uri_folder}}
        """))
    env = {**os.environ, "OPENAML_WORKSPACE": handle.url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "openaml", *args], env=env, capture_output=True, text=True,
                              timeout=300)

    p = cli("job", "create", "--file", str(root / "job.yml"), "-o", "json")
    assert p.returncode == 0, p.stderr
    import json

    job = json.loads(p.stdout)["name"]
    done = ml.jobs.wait(job, timeout=600) if hasattr(ml.jobs, "wait") else None
    assert done is None or done.status == "Completed"
    (root / "model").mkdir()
    (root / "model" / "w.txt").write_text("w")
    try:
        yield {"url": handle.url, "ml": ml, "cli": cli, "job": job, "model_dir": root / "model"}
    finally:
        ml.close()
        handle.stop()


def _create(g: dict[str, Any], **tags: str) -> Any:
    from openaml.entities import Model

    return g["ml"].models.create_or_update(Model(name=MODEL, path=str(g["model_dir"]), type="custom_model", tags=tags))


def test_the_verdict_is_derived_from_the_linked_score_card(gate):
    ml, job = gate["ml"], gate["job"]
    v1 = _create(gate, **{"rai.scorecard": f"{job}/passing"})
    assert v1.tags["rai.verdict"] == "pass" and v1.tags["rai.failed"] == ""
    v2 = _create(gate)
    assert "rai.verdict" not in v2.tags
    p = gate["cli"]("model", "update", "-n", MODEL, "-v", str(v2.version), "--set",
                    f"tags.rai.scorecard={job}/failing", "-o", "json")
    assert p.returncode == 0, p.stderr
    shown = ml.models.get(MODEL, version=v2.version)
    assert shown.tags["rai.verdict"] == "fail" and shown.tags["rai.scorecard"] == f"{job}/failing"
    assert "demographic_parity_difference = 0.8398" in shown.tags["rai.failed"]
    assert "(must be <= 0.05)" in shown.tags["rai.failed"] and "accuracy" not in shown.tags["rai.failed"]
    gate["versions"] = {"pass": str(v1.version), "fail": str(v2.version)}


def test_a_verdict_cannot_be_claimed_nor_linked_to_nothing(gate):
    ml, job = gate["ml"], gate["job"]
    before = len(ml.models.list(MODEL))
    with pytest.raises(ValidationError, match=r"'rai.verdict' is written by the server.*rai.scorecard"):
        _create(gate, **{"rai.verdict": "pass"})
    with pytest.raises(ValidationError, match="rai.verdict"):
        ml.models.update(MODEL, gate["versions"]["fail"], tags={"rai.verdict": "pass"})
    with pytest.raises(ValidationError, match=r"<job name>/<output name>"):
        ml.models.update(MODEL, gate["versions"]["fail"], tags={"rai.scorecard": "just-a-job"})
    with pytest.raises(ValidationError, match=r"output 'empty' of job .* holds no score card"):
        _create(gate, **{"rai.scorecard": f"{job}/empty"})
    with pytest.raises(NotFoundError):
        ml.models.update(MODEL, gate["versions"]["fail"], tags={"rai.scorecard": "no-such-job-xyz/out"})
    # the passing score card is version 1's: it cannot be version 2's verdict
    with pytest.raises(ValidationError, match=rf"that score card is of model {MODEL}:1, not {MODEL}:2"):
        ml.models.update(MODEL, gate["versions"]["fail"], tags={"rai.scorecard": f"{job}/passing"})
    assert len(ml.models.list(MODEL)) == before  # nothing registered by a refused create
    assert ml.models.get(MODEL, version=gate["versions"]["fail"]).tags["rai.verdict"] == "fail"


def test_policy_is_set_with_the_cli_and_read_with_the_sdk(gate):
    ml = gate["ml"]
    assert ml.workspaces.get_rai_gate()["require"] is None  # off by default
    p = gate["cli"]("workspace", "update", "--set", "rai_gate.require=pass", "--set",
                    "rai_gate.protected_tags=[production]", "--set", "rai_gate.protected_stages=[Production]")
    assert p.returncode == 0, p.stderr
    policy = ml.workspaces.get_rai_gate()
    assert policy == {"require": "pass", "protected_tags": ["production"], "protected_stages": ["Production"],
                      "protected_aliases": [], "deployments": ["online", "batch"]}
    bad = gate["cli"]("workspace", "update", "--set", "rai_gate.nope=1")
    assert bad.returncode != 0 and "rai_gate.nope" in bad.stderr
    bad = gate["cli"]("workspace", "update", "--set", "rai_gate.require=maybe")
    assert bad.returncode != 0 and "rai_gate.require" in bad.stderr
    assert ml.workspaces.get_rai_gate() == policy  # a refused change changes nothing


def test_a_protected_tag_or_stage_needs_a_passing_verdict(gate):
    ml, job, v = gate["ml"], gate["job"], gate["versions"]
    p = gate["cli"]("model", "update", "-n", MODEL, "-v", v["fail"], "--set", "tags.production=true")
    assert p.returncode != 0
    assert "RAI gate" in p.stderr and "demographic_parity_difference = 0.8398 (must be <= 0.05)" in p.stderr
    assert "production" not in ml.models.get(MODEL, version=v["fail"]).tags
    r = httpx.patch(f"{gate['url']}/api/v1/models/{MODEL}/versions/{v['fail']}", json={"stage": "Production"})
    assert r.status_code == 409 and "stage Production" in r.json()["error"]["message"]
    bare = _create(gate)
    with pytest.raises(ConflictError, match="no RAI score card verdict; link one with: openaml model update"):
        ml.models.update(MODEL, bare.version, tags={"production": "yes"})
    # a verdict tag cannot be forged through MLflow's own API, and the score card file decides anyway
    from mlflow.exceptions import RestException
    from mlflow.tracking import MlflowClient

    with pytest.raises(RestException, match="INVALID_PARAMETER_VALUE.*written by the server"):
        MlflowClient(tracking_uri=f"{gate['url']}/mlflow", registry_uri=f"{gate['url']}/mlflow"
                     ).set_model_version_tag(MODEL, v["fail"], "rai.verdict", "pass")
    assert ml.models.get(MODEL, version=v["fail"]).tags["rai.verdict"] == "fail"
    with pytest.raises(ConflictError, match="verdict is 'fail'"):
        ml.models.update(MODEL, v["fail"], tags={"production": "true"})
    ok = ml.models.update(MODEL, v["pass"], tags={"production": "true"}, stage="Production")
    assert ok.tags["production"] == "true" and ok.stage == "Production"
    # registering a version under a protected tag: its linked score card must pass, in the same call
    before = len(ml.models.list(MODEL))
    with pytest.raises(ConflictError, match="cannot be registered with tag production"):
        _create(gate, production="1", **{"rai.scorecard": f"{job}/failing"})
    assert len(ml.models.list(MODEL)) == before
    assert _create(gate, production="1", **{"rai.scorecard": f"{job}/passing"}).tags["rai.verdict"] == "pass"
    # an unprotected tag is free whatever the verdict
    assert ml.models.update(MODEL, v["fail"], tags={"team": "a"}).tags["team"] == "a"


def test_mlflow_rest_writes_pass_the_same_gate(gate):
    """Version tags, aliases, stage transitions and versions created with tags through MLflow's own REST
    API (the real mlflow client against /mlflow) are refused with 409 and the failing checks while the
    gate is on, and pass for a version whose score card passes (issue 16, RAI gate)."""
    from mlflow.exceptions import RestException
    from mlflow.tracking import MlflowClient

    ml, v = gate["ml"], gate["versions"]
    ml.workspaces.update_rai_gate(require="pass", protected_tags=["production"], protected_stages=["Production"],
                                  protected_aliases=["champion"])
    client = MlflowClient(tracking_uri=f"{gate['url']}/mlflow", registry_uri=f"{gate['url']}/mlflow")
    failing = "demographic_parity_difference = 0.8398 (must be <= 0.05)"
    with pytest.raises(RestException, match="RESOURCE_CONFLICT") as e:
        client.set_model_version_tag(MODEL, v["fail"], "production", "yes")
    assert e.value.get_http_status_code() == 409 and failing in e.value.message
    assert "production" not in client.get_model_version(MODEL, v["fail"]).tags
    for alias in ("champion", "production"):  # a protected alias, and a protected tag's key as an alias
        with pytest.raises(RestException, match=f"alias '{alias}'.*{failing[:20]}"):
            client.set_registered_model_alias(MODEL, alias, v["fail"])
    assert "champion" not in client.get_registered_model(MODEL).aliases
    with pytest.raises(RestException, match="stage Production"):
        client.transition_model_version_stage(MODEL, v["fail"], "Production")
    source = client.get_model_version(MODEL, v["fail"]).source
    before = len(client.search_model_versions(f"name='{MODEL}'"))
    with pytest.raises(RestException, match="cannot be registered|no RAI score card"):
        client.create_model_version(MODEL, source, tags={"production": "1"})
    assert len(client.search_model_versions(f"name='{MODEL}'")) == before
    # a body double-encoded as a JSON string, which MLflow's server decodes a second time, is checked
    # the same (review16 F6: it went through unchecked); a body that is no JSON object is refused
    api = f"{gate['url']}/mlflow/api/2.0/mlflow"
    writes = [("model-versions/set-tag", {"name": MODEL, "version": v["fail"], "key": "production", "value": "t"}),
              ("model-versions/transition-stage", {"name": MODEL, "version": v["fail"], "stage": "Production",
                                                   "archive_existing_versions": False}),
              ("registered-models/alias", {"name": MODEL, "version": v["fail"], "alias": "champion"}),
              ("model-versions/set-tag", {"name": MODEL, "version": v["fail"], "key": "rai.verdict", "value": "pass"})]
    for path, body in writes:
        r = httpx.post(f"{api}/{path}", content=json.dumps(json.dumps(body)),
                       headers={"content-type": "application/json"})
        assert r.status_code in (400, 409), (path, r.status_code, r.text)
    for junk in (b"[1]", b'"x"', b"not json"):
        assert httpx.post(f"{api}/model-versions/set-tag", content=junk).status_code == 400
    after = client.get_model_version(MODEL, v["fail"])
    assert "production" not in after.tags and after.tags.get("rai.verdict") != "pass"
    assert after.current_stage != "Production" and "champion" not in client.get_registered_model(MODEL).aliases
    # the passing version gets them; unprotected tags and aliases are free for any version
    client.set_model_version_tag(MODEL, v["pass"], "production", "yes")
    client.set_registered_model_alias(MODEL, "champion", v["pass"])
    assert client.get_model_version_by_alias(MODEL, "champion").version == v["pass"]
    client.set_model_version_tag(MODEL, v["fail"], "team", "b")
    client.set_registered_model_alias(MODEL, "candidate", v["fail"])
    assert client.get_model_version(MODEL, v["fail"]).tags["team"] == "b"


def test_deployments_need_a_passing_verdict(gate):
    url, v = gate["url"], gate["versions"]
    assert httpx.put(f"{url}/api/v1/online-endpoints/gated-ep", json={"name": "gated-ep"}).status_code == 200
    dep = {"name": "blue", "endpoint_name": "gated-ep", "instance_type": "Standard_DS3_v2", "instance_count": 1}
    r = httpx.put(f"{url}/api/v1/online-endpoints/gated-ep/deployments/blue",
                  json={**dep, "model": f"azureml:{MODEL}:{v['fail']}"})
    assert r.status_code == 409, r.text
    msg = r.json()["error"]["message"]
    assert "online endpoint 'gated-ep'" in msg and "demographic_parity_difference = 0.8398" in msg
    r = httpx.put(f"{url}/api/v1/online-endpoints/gated-ep/deployments/blue",
                  json={**dep, "model": {"path": str(gate["model_dir"])}})
    assert r.status_code == 409 and "inline model" in r.json()["error"]["message"]
    # the passing version goes past the gate (to the deployment's own checks: a custom model needs code)
    r = httpx.put(f"{url}/api/v1/online-endpoints/gated-ep/deployments/blue",
                  json={**dep, "model": f"azureml:{MODEL}:{v['pass']}"})
    assert r.status_code != 409 and "RAI gate" not in r.text
    assert httpx.get(f"{url}/api/v1/online-endpoints/gated-ep/deployments").json() == [] or r.status_code == 200
    # batch
    assert httpx.put(f"{url}/api/v1/batch-endpoints/gated-bep", json={"name": "gated-bep"}).status_code == 200
    r = httpx.put(f"{url}/api/v1/batch-endpoints/gated-bep/deployments/dep1",
                  json={"name": "dep1", "endpoint_name": "gated-bep", "model": f"azureml:{MODEL}:{v['fail']}"})
    assert r.status_code == 409 and "batch deployment 'dep1'" in r.json()["error"]["message"]
    assert httpx.get(f"{url}/api/v1/batch-endpoints/gated-bep/deployments").json() == []
    # with deployments left out of the policy, and with the gate off, the failing version is not stopped by it
    gate["ml"].workspaces.update_rai_gate(deployments=[])
    r = httpx.put(f"{url}/api/v1/batch-endpoints/gated-bep/deployments/dep1",
                  json={"name": "dep1", "endpoint_name": "gated-bep", "model": f"azureml:{MODEL}:{v['fail']}"})
    assert r.status_code != 409 and "RAI gate" not in r.text
    gate["ml"].workspaces.update_rai_gate(require=None, deployments=["online", "batch"])
    ok = gate["ml"].models.update(MODEL, v["fail"], tags={"production": "true"})
    assert ok.tags["production"] == "true"


def test_the_studio_shows_the_verdict_of_the_linked_score_card(gate):
    """The model page links to the dashboard that holds its score card (the model's RAI page)."""
    page = httpx.get(f"{gate['url']}/models/{MODEL}/rai", params={"version": gate["versions"]["fail"]},
                     headers={"Accept": "text/html"}, timeout=60).text
    assert 'id="verdict">fail<' in page and "FAILED" in page
    model_page = httpx.get(f"{gate['url']}/models/{MODEL}", params={"version": gate["versions"]["pass"]},
                           headers={"Accept": "text/html"}, timeout=60).text
    assert 'id="rai-verdict">pass<' in model_page


def test_cli_model_update_refuses_fields_it_cannot_change(gate):
    p = gate["cli"]("model", "update", "-n", MODEL, "-v", gate["versions"]["pass"], "--set", "path=elsewhere")
    assert p.returncode != 0 and "--set path" in p.stderr
    assert Path(gate["model_dir"]).exists()
