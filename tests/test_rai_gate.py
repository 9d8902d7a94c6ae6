"""The RAI gate on promotion: a model version's score card verdict (tags derived by the server from
``rai.scorecard``) and the workspace policy that makes a protected tag or stage, and deployments,
require a passing verdict. A server of its own (the policy is workspace-wide), the real SDK and CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
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

MODEL = "gated"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
_REG = "azureml://registries/azureml/components"
_FAILING = r"selection_rate_difference\(Sex\) = [0-9.]+ \(must be <= 0.05\)"


def _chain(version: str, config: str, *, suffix: str | None = None, title: str = "Titanic") -> str:
    """The built-in constructor -> gather -> score card steps on ``gated:<version>`` (pipeline YAML),
    named ``c<suffix>``, ``g<suffix>``, ``s<suffix>`` (the version by default)."""
    v, m = suffix or version, version
    return textwrap.dedent(f"""\
      c{v}:
        type: command
        component: {_REG}/rai_tabular_insight_constructor/labels/latest
        inputs:
          title: {json.dumps(title)}
          task_type: classification
          model_info: {MODEL}:{m}
          model_input: {{type: mlflow_model, path: azureml:{MODEL}:{m}}}
          train_dataset: ${{{{parent.inputs.train}}}}
          test_dataset: ${{{{parent.inputs.test}}}}
          target_column_name: Survived
          categorical_column_names: '["Sex", "Embarked"]'
      g{v}:
        type: command
        component: {_REG}/microsoft_azureml_rai_tabular_insight_gather/labels/latest
        inputs:
          constructor: ${{{{parent.jobs.c{v}.outputs.rai_insights_dashboard}}}}
      s{v}:
        type: command
        component: {_REG}/rai_tabular_score_card/labels/latest
        inputs:
          dashboard: ${{{{parent.jobs.g{v}.outputs.dashboard}}}}
          pdf_generation_config: {{type: uri_file, path: ./{config}}}
    """)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Its own server; ``gated`` versions 1 and 2 (the titanic example's model), each with a real score
    card from the built-in constructor -> gather -> score card chain: version 1's passes (accuracy >=
    0.5), version 2's fails (selection rate difference by Sex above 0.05). ``cards``: version -> the
    ``<job>/<output>`` of its score card."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from openaml import MLClient

    root = tmp_path_factory.mktemp("rai-gate")
    handle = start_server(root / "ws", name="rai-gate")
    ml = MLClient(workspace=handle.url)
    env = {**os.environ, "OPENAML_WORKSPACE": handle.url}

    def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "openaml", *args], env=env, capture_output=True, text=True,
                              timeout=600, cwd=cwd)

    import pandas as pd

    sys.path.insert(0, str(EXAMPLES / "titanic" / "src"))
    try:
        from train import build_pipeline  # the example's own model
    finally:
        sys.path.pop(0)
    shutil.copytree(EXAMPLES / "titanic" / "rai" / "data", root / "data")
    train = pd.read_parquet(root / "data" / "train" / "train.parquet")
    X, y = train.drop(columns=["Survived"]), train["Survived"]
    model = build_pipeline(1.0, 100).fit(X, y)
    mlflow.sklearn.save_model(model, str(root / "model"), signature=infer_signature(X, model.predict(X)),
                              skops_trusted_types=["numpy.dtype"])
    for v in ("1", "2"):
        p = cli("model", "create", "--name", MODEL, "--version", v, "--path", str(root / "model"), "--type",
                "mlflow_model")
        assert p.returncode == 0, p.stderr
    (root / "pass.json").write_text(json.dumps({"Metrics": {"accuracy_score": {"threshold": ">=0.5"}}}))
    (root / "fail.json").write_text(json.dumps({
        "Metrics": {"accuracy_score": {"threshold": ">=0.5"}},
        "Fairness": {"metric": ["selection_rate"], "sensitive_features": ["Sex"], "threshold": "<=0.05"}}))
    (root / "chain.yml").write_text("type: pipeline\ninputs:\n  train: {type: mltable, path: ./data/train}\n"
                                    "  test: {type: mltable, path: ./data/test}\njobs:\n"
                                    + textwrap.indent(_chain("1", "pass.json") + _chain("2", "fail.json"), "  "))
    p = cli("job", "create", "--file", str(root / "chain.yml"), "-o", "json", cwd=root)
    assert p.returncode == 0, p.stderr
    pipeline = json.loads(p.stdout)["name"]
    cli("job", "stream", "--name", pipeline)
    assert ml.jobs.get_raw(pipeline)["status"] == "Completed", ml.jobs.get_raw(pipeline).get("error")
    try:
        yield {"url": handle.url, "ml": ml, "cli": cli, "root": root, "model_dir": root / "model",
               "pipeline": pipeline, "cards": {"1": f"{pipeline}-s1/scorecard", "2": f"{pipeline}-s2/scorecard"},
               "versions": {"pass": "1", "fail": "2"}}
    finally:
        ml.close()
        handle.stop()


def _create(g: dict[str, Any], **tags: str) -> Any:
    from openaml.entities import Model

    return g["ml"].models.create_or_update(Model(name=MODEL, path=str(g["model_dir"]), type="mlflow_model",
                                                 tags=tags))


def test_the_verdict_is_derived_from_the_linked_score_card(gate):
    ml, cards = gate["ml"], gate["cards"]
    v1 = ml.models.update(MODEL, "1", tags={"rai.scorecard": cards["1"]})
    assert v1.tags["rai.verdict"] == "pass" and v1.tags["rai.failed"] == ""
    assert "rai.verdict" not in ml.models.get(MODEL, version="2").tags
    p = gate["cli"]("model", "update", "-n", MODEL, "-v", "2", "--set", f"tags.rai.scorecard={cards['2']}", "-o", "json")
    assert p.returncode == 0, p.stderr
    shown = ml.models.get(MODEL, version="2")
    assert shown.tags["rai.verdict"] == "fail" and shown.tags["rai.scorecard"] == cards["2"]
    assert re.search(_FAILING, shown.tags["rai.failed"]) and "accuracy" not in shown.tags["rai.failed"]


def test_a_verdict_cannot_be_claimed_nor_linked_to_another_version(gate):
    ml, cards = gate["ml"], gate["cards"]
    before = len(ml.models.list(MODEL))
    with pytest.raises(ValidationError, match=r"'rai.verdict' is written by the server.*rai.scorecard"):
        _create(gate, **{"rai.verdict": "pass"})
    with pytest.raises(ValidationError, match="rai.verdict"):
        ml.models.update(MODEL, "2", tags={"rai.verdict": "pass"})
    with pytest.raises(ValidationError, match=r"<job name>/<output name>"):
        ml.models.update(MODEL, "2", tags={"rai.scorecard": "just-a-job"})
    with pytest.raises(NotFoundError):
        ml.models.update(MODEL, "2", tags={"rai.scorecard": "no-such-job-xyz/out"})
    # the gather step's dashboard is the built-in's but holds no score card
    with pytest.raises(ValidationError, match=r"output 'dashboard' of job .* holds no score card"):
        ml.models.update(MODEL, "2", tags={"rai.scorecard": f"{gate['pipeline']}-g2/dashboard"})
    # the passing score card is version 1's: it cannot be version 2's verdict (review16 F9)
    with pytest.raises(ValidationError, match=rf"that score card is of {MODEL}:1, not {MODEL}:2"):
        ml.models.update(MODEL, "2", tags={"rai.scorecard": cards["1"]})
    # nor of a version being registered: its score card cannot exist yet
    with pytest.raises(ValidationError, match=r"a version being registered has no score card yet.*register the "
                                              r"version, run the RAI pipeline on it, then link"):
        _create(gate, **{"rai.scorecard": cards["1"]})
    assert len(ml.models.list(MODEL)) == before  # nothing registered by a refused create
    assert ml.models.get(MODEL, version="2").tags["rai.verdict"] == "fail"


def test_policy_is_set_with_the_cli_and_read_with_the_sdk(gate):
    ml = gate["ml"]
    assert ml.workspaces.get_rai_gate()["require"] is None  # off by default
    p = gate["cli"]("workspace", "update", "--set", "rai_gate.require=pass", "--set",
                    "rai_gate.protected_tags=[production]", "--set", "rai_gate.protected_stages=[Production]")
    assert p.returncode == 0, p.stderr
    policy = ml.workspaces.get_rai_gate()
    assert policy == {"require": "pass", "protected_tags": ["production"], "protected_stages": ["Production"],
                      "protected_aliases": [], "deployments": ["online", "batch"], "required_checks": [],
                      "test_data": None, "min_test_rows": None}
    bad = gate["cli"]("workspace", "update", "--set", "rai_gate.nope=1")
    assert bad.returncode != 0 and "rai_gate.nope" in bad.stderr
    bad = gate["cli"]("workspace", "update", "--set", "rai_gate.require=maybe")
    assert bad.returncode != 0 and "rai_gate.require" in bad.stderr
    assert ml.workspaces.get_rai_gate() == policy  # a refused change changes nothing


def test_a_protected_tag_or_stage_needs_a_passing_verdict(gate):
    ml, cards, v = gate["ml"], gate["cards"], gate["versions"]
    p = gate["cli"]("model", "update", "-n", MODEL, "-v", v["fail"], "--set", "tags.production=true")
    assert p.returncode != 0
    assert "RAI gate" in p.stderr and re.search(_FAILING, p.stderr)
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
    # registering a new version under a protected tag can never pass: its score card cannot exist yet
    # (review16 F9: version 1's passing card let a new version take the tag)
    before = len(ml.models.list(MODEL))
    for tags in ({"production": "1", "rai.scorecard": cards["2"]}, {"production": "1", "rai.scorecard": cards["1"]}):
        with pytest.raises(ValidationError, match="a version being registered has no score card yet"):
            _create(gate, **tags)
    with pytest.raises(ConflictError, match=r"cannot be registered with tag production.*no score card yet; register "
                                            r"the version without the protected tag.*then set the tag"):
        _create(gate, production="1")
    assert len(ml.models.list(MODEL)) == before
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
    failing = "selection_rate_difference(Sex) = "
    with pytest.raises(RestException, match="RESOURCE_CONFLICT") as e:
        client.set_model_version_tag(MODEL, v["fail"], "production", "yes")
    assert e.value.get_http_status_code() == 409 and re.search(_FAILING, e.value.message)
    assert "production" not in client.get_model_version(MODEL, v["fail"]).tags
    for alias in ("champion", "production"):  # a protected alias, and a protected tag's key as an alias
        with pytest.raises(RestException, match=f"alias '{alias}'.*{re.escape(failing)}"):
            client.set_registered_model_alias(MODEL, alias, v["fail"])
    assert "champion" not in client.get_registered_model(MODEL).aliases
    for stage in ("Production", "production", "PRODUCTION"):  # MLflow stores any case as Production
        with pytest.raises(RestException, match=f"stage {stage}"):
            client.transition_model_version_stage(MODEL, v["fail"], stage)
    # openaml's own stage tag is the server's (it would be a stage by another name)
    with pytest.raises(RestException, match="tag 'openaml.stage' is the server's"):
        client.set_model_version_tag(MODEL, v["fail"], "openaml.stage", "Production")
    assert ml.models.get(MODEL, version=v["fail"]).stage != "Production"
    source = client.get_model_version(MODEL, v["fail"]).source
    before = len(client.search_model_versions(f"name='{MODEL}'"))
    with pytest.raises(RestException, match="cannot be registered.*no score card yet.*then set the tag"):
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
    assert "online endpoint 'gated-ep'" in msg and re.search(_FAILING, msg)
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


def test_a_forged_score_card_is_refused(gate):
    """review16 F7: a passing verdict written by anything but the built-in chain constructor -> gather ->
    score card is refused naming why: a plain command job writing the files, an inline component with
    the built-in's name and another command, the built-in command run by hand on a forged dashboard,
    the built-in command with a shell command chained after it, with code of its own, or with
    PYTHONPATH set."""
    from openaml.rai.registry import builtin_component

    root, cli = gate["root"] / "forge", gate["cli"]
    (root / "src").mkdir(parents=True)
    dashboard = {"schema": "openaml.rai.dashboard/1", "title": "forged", "task_type": "classification",
                 "model": {"name": MODEL, "version": "2", "uri": f"azureml:{MODEL}:2"},
                 "metrics": {"overall": {"accuracy": 0.99}}, "test": {"rows": []}, "scorecard": None}
    (root / "src" / "forge.py").write_text(textwrap.dedent(f"""\
        import json, pathlib, sys
        out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
        doc = {dashboard!r}
        doc["scorecard"] = {{"verdict": "pass", "checks": []}}
        (out / "dashboard.json").write_text(json.dumps(doc))
        (out / "scorecard.json").write_text(json.dumps(doc["scorecard"]))
        """))
    (root / "fake").mkdir()
    (root / "fake" / "dashboard.json").write_text(json.dumps(dashboard))
    (root / "cfg.json").write_text(json.dumps({"Metrics": {"accuracy_score": {"threshold": ">=0.5"}}}))
    template = builtin_component("azureml", "rai_tabular_score_card")["command"]
    ports = textwrap.dedent("""\
        inputs: {dashboard: {type: uri_folder, path: ./fake}, pdf_generation_config: {type: uri_file, path: ./cfg.json}}
        outputs: {scorecard: {type: uri_folder}}
        """)
    jobs = {
        "plain": "type: command\ncode: ./src\ncommand: python forge.py ${{outputs.scorecard}}\n"
                 "outputs: {scorecard: {type: uri_folder}}\n",
        "by_hand": f"type: command\ncommand: {json.dumps(template)}\n{ports}",
        "chained": f"type: command\ncommand: {json.dumps(template + '; python -c pass')}\n{ports}",
        "code": f"type: command\ncode: ./src\ncommand: {json.dumps(template)}\n{ports}",
        "env": f"type: command\ncommand: {json.dumps(template)}\n{ports}environment_variables: {{PYTHONPATH: /tmp}}\n",
        "inline": textwrap.dedent("""\
            type: pipeline
            jobs:
              scorecard_01:
                type: command
                component:
                  name: rai_tabular_score_card
                  version: 0.18.0
                  type: command
                  code: ./src
                  outputs: {scorecard: {type: uri_folder}}
                  command: python forge.py ${{outputs.scorecard}}
            """)}
    names = {}
    for key, text in jobs.items():
        (root / f"{key}.yml").write_text(text)
        p = cli("job", "create", "--file", str(root / f"{key}.yml"), "-o", "json", cwd=root)
        assert p.returncode == 0, (key, p.stderr)
        names[key] = json.loads(p.stdout)["name"]
    for name in names.values():
        cli("job", "stream", "--name", name)
    ml = gate["ml"]
    refs = {"plain": f"{names['plain']}/scorecard", "by_hand": f"{names['by_hand']}/scorecard",
            "chained": f"{names['chained']}/scorecard", "inline": f"{names['inline']}-scorecard_01/scorecard",
            "code": f"{names['code']}/scorecard", "env": f"{names['env']}/scorecard"}
    why = {"plain": r"job '[^']+' runs another command: 'python forge.py",
           "inline": r"job '[^']+' runs another command: 'python forge.py",
           "chained": r"job '[^']+' runs another command: .*; python -c pass",
           "code": r"job '[^']+' runs code of its own", "env": r"job '[^']+' sets environment variables \['PYTHONPATH'\]",
           "by_hand": r"its input 'dashboard' is '.*fake.*', not an output of a built-in rai_tabular_insight_gather"}
    for key, ref in refs.items():
        assert ml.jobs.get_raw(ref.partition("/")[0])["status"] == "Completed", key
        with pytest.raises(ValidationError, match=r"(output 'scorecard'|the output) of job '[^']+' was not written by "
                                                  rf"the built-in RAI rai_tabular_score_card component \({why[key]}"):
            ml.models.update(MODEL, "2", tags={"rai.scorecard": ref})
    shown = ml.models.get(MODEL, version="2").tags
    assert shown.get("rai.verdict") != "pass" and shown.get("rai.scorecard") not in refs.values()


def test_a_score_card_of_a_pipeline_built_in_the_sdk_passes(gate):
    """The chain built in the SDK from ``MLClient(registry_name="azureml").components.get(...)`` (Azure's
    notebooks) is the built-in's: its score card is trusted."""
    from openaml import Input, MLClient, dsl

    reg = MLClient(workspace=gate["url"], registry_name="azureml")
    version = reg.components.get("microsoft_azureml_rai_tabular_insight_constructor", label="latest").version
    constructor = reg.components.get("microsoft_azureml_rai_tabular_insight_constructor", version=version)
    gather = reg.components.get("microsoft_azureml_rai_tabular_insight_gather", version=version)
    score_card = reg.components.get("microsoft_azureml_rai_tabular_score_card", version=version)
    root = gate["root"]

    @dsl.pipeline(compute="local", experiment_name="rai-gate-sdk")
    def rai(train: Input, test: Input, config: Input) -> dict:
        create = constructor(title="sdk", task_type="classification", model_info=f"{MODEL}:1",
                             model_input=Input(type="mlflow_model", path=f"azureml:{MODEL}:1"),
                             train_dataset=train, test_dataset=test, target_column_name="Survived",
                             categorical_column_names='["Sex", "Embarked"]')
        gathered = gather(constructor=create.outputs.rai_insights_dashboard)
        card = score_card(dashboard=gathered.outputs.dashboard, pdf_generation_config=config)
        return {"scorecard": card.outputs.scorecard}

    job = gate["ml"].jobs.create_or_update(rai(
        train=Input(type="mltable", path=str(root / "data" / "train")),
        test=Input(type="mltable", path=str(root / "data" / "test")),
        config=Input(type="uri_file", path=str(root / "pass.json"))))
    gate["cli"]("job", "stream", "--name", job.name)
    assert gate["ml"].jobs.get_raw(job.name)["status"] == "Completed"
    step = next(c["name"] for c in gate["ml"].jobs.list_raw(parent_job_name=job.name) if c["name"].endswith("-card"))
    shown = gate["ml"].models.update(MODEL, "1", tags={"rai.scorecard": f"{step}/scorecard"})
    assert shown.tags["rai.verdict"] == "pass" and shown.tags["rai.scorecard"] == f"{step}/scorecard"


def test_a_score_card_of_a_reused_step_is_the_step_it_reuses(gate):
    """The same pipeline submitted again reuses every step (its records point at the earlier steps):
    the reused score card is the built-in's too."""
    cli, ml = gate["cli"], gate["ml"]
    p = cli("job", "create", "--file", str(gate["root"] / "chain.yml"), "-o", "json", cwd=gate["root"])
    assert p.returncode == 0, p.stderr
    again = json.loads(p.stdout)["name"]
    cli("job", "stream", "--name", again)
    step = ml.jobs.get_raw(f"{again}-s2")
    assert step["status"] == "Completed" and step["properties"]["azureml.isreused"] == "true", step
    shown = ml.models.update(MODEL, "2", tags={"rai.scorecard": f"{again}-s2/scorecard"})
    assert shown.tags["rai.verdict"] == "fail" and re.search(_FAILING, shown.tags["rai.failed"])


def test_cli_set_tags_keeps_the_text_typed(gate):
    """review16 F11: ``--set tags.release=true`` stored Python's ``True``, so the key=value protected tag
    ``release=true`` did not apply to it."""
    ml, cli = gate["ml"], gate["cli"]
    for v in ("1", "2"):
        ml.models.update(MODEL, v, tags={"rai.scorecard": gate["cards"][v]})
    before = ml.workspaces.get_rai_gate()
    ml.workspaces.update_rai_gate(require="pass", protected_tags=["release=true"])
    try:
        p = cli("model", "update", "-n", MODEL, "-v", "2", "--set", "tags.release=true")
        assert p.returncode != 0 and "tag release=true" in p.stderr and "RAI gate" in p.stderr
        assert "release" not in ml.models.get(MODEL, version="2").tags
        p = cli("model", "update", "-n", MODEL, "-v", "1", "--set", "tags.release=true", "--set", "tags.build=007",
                "--set", "tags.rai.note=yes", "--set", "description=on", "-o", "json")
        assert p.returncode == 0, p.stderr
        tags = ml.models.get(MODEL, version="1").tags
        assert (tags["release"], tags["build"], tags["rai.note"]) == ("true", "007", "yes")
        p = cli("model", "create", "--name", "typed", "--path", str(gate["model_dir"]), "--type", "mlflow_model",
                "--set", "tags.flag=false", "--set", "tags.n=1.50", "-o", "json")
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["tags"] | {} == {**json.loads(p.stdout)["tags"], "flag": "false", "n": "1.50"}
    finally:
        ml.workspaces.update_rai_gate(**before)


def test_a_score_card_of_the_real_chain_is_refused_when_an_input_leaves_its_quotes_or_it_checks_nothing(gate):
    """review G1: an input value holding a quote is pasted into the built-in command's shell line and
    can end its quotes and run anything inside the trusted step: such a chain is refused, naming the
    input. review G3: a score card whose config sets no thresholds checks nothing: its ``pass`` is no
    pass (the verdict is fail, the missing checks named)."""
    root, cli, ml = gate["root"], gate["cli"], gate["ml"]
    (root / "empty.json").write_text("{}")
    # bash reads 'x'"'"'y' as x'y: the step runs and completes, yet its title left the quotes
    (root / "g1.yml").write_text("type: pipeline\ninputs:\n  train: {type: mltable, path: ./data/train}\n"
                                 "  test: {type: mltable, path: ./data/test}\njobs:\n"
                                 + textwrap.indent(_chain("1", "pass.json", suffix="q", title="x'\"'\"'y")
                                                   + _chain("1", "empty.json", suffix="e"), "  "))
    p = cli("job", "create", "--file", str(root / "g1.yml"), "-o", "json", cwd=root)
    assert p.returncode == 0, p.stderr
    pipeline = json.loads(p.stdout)["name"]
    cli("job", "stream", "--name", pipeline)
    for step in ("cq", "sq", "se"):
        assert ml.jobs.get_raw(f"{pipeline}-{step}")["status"] == "Completed", step
    with pytest.raises(ValidationError, match=r"has input 'title' = .*which the command line would not keep as one "
                                              r"argument"):
        ml.models.update(MODEL, "1", tags={"rai.scorecard": f"{pipeline}-sq/scorecard"})
    shown = ml.models.update(MODEL, "1", tags={"rai.scorecard": f"{pipeline}-se/scorecard"})
    assert shown.tags["rai.verdict"] == "fail", shown.tags
    assert shown.tags["rai.failed"] == "checks in the score card = 0 (must be >= 1)"


def test_a_trusted_step_sets_no_environment_variable_of_the_shell(gate):
    """review G2: bash runs ``BASH_ENV`` (and ``BASH_FUNC_<name>%%`` functions) before the command: a
    built-in step with any job variable but ``OPENAML_RAI_WARM`` is not trusted."""
    from openaml.rai.registry import builtin_component

    root, cli, ml = gate["root"] / "bash-env", gate["cli"], gate["ml"]
    root.mkdir()
    (root / "fake").mkdir()
    (root / "fake" / "dashboard.json").write_text(json.dumps({  # as the forged test's: the step completes
        "schema": "openaml.rai.dashboard/1", "title": "forged", "task_type": "classification",
        "model": {"name": MODEL, "version": "2", "uri": f"azureml:{MODEL}:2"},
        "metrics": {"overall": {"accuracy": 0.99}}, "test": {"rows": []}, "scorecard": None}))
    (root / "cfg.json").write_text(json.dumps({"Metrics": {"accuracy_score": {"threshold": ">=0.5"}}}))
    template = builtin_component("azureml", "rai_tabular_score_card")["command"]
    (root / "job.yml").write_text(
        f"type: command\ncommand: {json.dumps(template)}\n"
        "inputs: {dashboard: {type: uri_folder, path: ./fake}, pdf_generation_config: {type: uri_file, path: ./cfg.json}}\n"
        "outputs: {scorecard: {type: uri_folder}}\nenvironment_variables: {BASH_ENV: /dev/null}\n")
    p = cli("job", "create", "--file", str(root / "job.yml"), "-o", "json", cwd=root)
    assert p.returncode == 0, p.stderr
    name = json.loads(p.stdout)["name"]
    cli("job", "stream", "--name", name)
    assert ml.jobs.get_raw(name)["status"] == "Completed"
    with pytest.raises(ValidationError, match=r"sets environment variables \['BASH_ENV'\]"):
        ml.models.update(MODEL, "2", tags={"rai.scorecard": f"{name}/scorecard"})


def test_registered_model_files_cannot_be_replaced_through_mlflow_artifacts(gate):
    """review G6: a version's files (kept under the artifact root's models/) were writable through
    MLflow's artifact proxy, so a model could be swapped after its score card passed. Writes there
    (PUT, DELETE, multipart create) are refused with 403; reads still work."""
    ml = gate["ml"]
    base = f"{gate['url']}/mlflow/api/2.0/mlflow-artifacts"
    listing = httpx.get(f"{base}/artifacts", params={"path": f"models/{MODEL}/1"})
    assert listing.status_code == 200, listing.text
    files = [f["path"] for f in listing.json().get("files", []) if not f.get("is_dir")]
    target = files[0] if files else "MLmodel"
    before = httpx.get(f"{base}/artifacts/models/{MODEL}/1/{target}")
    for method, url in [("PUT", f"{base}/artifacts/models/{MODEL}/1/{target}"),
                        ("PUT", f"{base}/artifacts//./models/{MODEL}/1/{target}"),
                        ("DELETE", f"{base}/artifacts/models/{MODEL}/1/{target}"),
                        ("POST", f"{base}/mpu/create/models/{MODEL}/1/{target}")]:
        r = httpx.request(method, url, content=b"swapped")
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", (method, url, r.text)
    after = httpx.get(f"{base}/artifacts/models/{MODEL}/1/{target}")
    assert after.status_code == before.status_code and after.content == before.content
    assert ml.models.get(MODEL, version="1").version == "1"


def test_score_card_tags_and_model_deletes_through_mlflow(gate):
    """review G9: ``rai.scorecard`` set (or a score card tag deleted) through MLflow left ``rai.verdict``
    out of step with it; it is linked through openaml only. review G7: a model deleted or renamed
    through MLflow let another model take its name and version, and with them a passing score card;
    while the gate is on that is refused (archive instead), and free again once it is off."""
    from mlflow.exceptions import RestException
    from mlflow.tracking import MlflowClient

    ml, v = gate["ml"], gate["versions"]
    for ver in ("1", "2"):
        ml.models.update(MODEL, ver, tags={"rai.scorecard": gate["cards"][ver]})
    client = MlflowClient(tracking_uri=f"{gate['url']}/mlflow", registry_uri=f"{gate['url']}/mlflow")
    before = ml.workspaces.get_rai_gate()
    with pytest.raises(RestException, match="'rai.scorecard' is linked through openaml.*openaml model update") as e:
        client.set_model_version_tag(MODEL, v["fail"], "rai.scorecard", gate["cards"][v["pass"]])
    assert e.value.get_http_status_code() == 400
    tags = client.get_model_version(MODEL, v["fail"]).tags
    assert (tags["rai.scorecard"], tags["rai.verdict"]) == (gate["cards"][v["fail"]], "fail")
    for key in ("rai.scorecard", "rai.verdict", "rai.failed"):
        with pytest.raises(RestException, match=f"tag '{re.escape(key)}' of a version's score card is not removed"):
            client.delete_model_version_tag(MODEL, v["pass"], key)
    assert client.get_model_version(MODEL, v["pass"]).tags["rai.verdict"] == "pass"
    client.set_model_version_tag(MODEL, v["pass"], "note", "x")  # other tags come and go as before
    client.delete_model_version_tag(MODEL, v["pass"], "note")
    assert "note" not in client.get_model_version(MODEL, v["pass"]).tags
    ml.workspaces.update_rai_gate(require="pass", protected_tags=["production"])
    try:
        for call in (lambda: client.rename_registered_model(MODEL, "taken-over"),
                     lambda: client.delete_model_version(MODEL, v["pass"]),
                     lambda: client.delete_registered_model(MODEL)):
            with pytest.raises(RestException, match="RAI gate is on, models are not deleted or renamed.*archive") as e:
                call()
            assert e.value.get_http_status_code() == 409
        assert client.get_model_version(MODEL, v["pass"]).tags["rai.verdict"] == "pass"
        assert "taken-over" not in [m.name for m in client.search_registered_models()]
        ml.workspaces.update_rai_gate(require=None)
        client.create_registered_model("scratch-gate-off")  # with the gate off, MLflow's deletes work as ever
        client.delete_registered_model("scratch-gate-off")
        assert "scratch-gate-off" not in [m.name for m in client.search_registered_models()]
    finally:
        ml.workspaces.update_rai_gate(**before)


def test_the_policy_pins_the_standard_the_test_data_and_its_size(gate):
    """Review G3: the caller's pdf_generation_config may check nothing, or little, on test data of their
    choosing; the workspace policy's required_checks are judged on what the dashboard measured, and it
    can pin the constructor's test data asset and the fewest test rows."""
    ml, cards, cli = gate["ml"], gate["cards"], gate["cli"]
    before = ml.workspaces.get_rai_gate()

    def verdict_of_v1() -> tuple[str, str]:
        tags = ml.models.update(MODEL, "1", tags={"rai.scorecard": cards["1"]}).tags
        return tags["rai.verdict"], tags["rai.failed"]

    try:
        # version 1's card checks accuracy >= 0.5 only; the workspace asks for 0.99
        p = cli("workspace", "update", "--set", "rai_gate.required_checks=[accuracy_score>=0.99]")
        assert p.returncode == 0, p.stderr
        verdict, failed = verdict_of_v1()
        assert verdict == "fail"
        assert re.search(r"accuracy = 0\.[0-9]+ \(must be >= 0\.99, the workspace's RAI policy\)", failed), failed
        # a metric the card's config does not check is judged on the dashboard's measured value
        ml.workspaces.update_rai_gate(required_checks=["accuracy_score>=0.5", "recall_score>0.01"])
        assert verdict_of_v1() == ("pass", "")
        # one the dashboard did not measure fails, saying so
        ml.workspaces.update_rai_gate(required_checks=["selection_rate_difference(Pclass)<=1"])
        verdict, failed = verdict_of_v1()
        assert verdict == "fail" and "selection_rate_difference(Pclass) = not measured by this score card" in failed
        # the test data: the chain's constructor read a folder of the caller's, not the pinned asset
        ml.workspaces.update_rai_gate(required_checks=[], test_data="titanic-test:1")
        verdict, failed = verdict_of_v1()
        assert verdict == "fail" and "the constructor's test_dataset = " in failed and "(must be == titanic-test:1" \
            in failed, failed
        ml.workspaces.update_rai_gate(test_data=None, min_test_rows=100000)
        verdict, failed = verdict_of_v1()
        assert verdict == "fail" and re.search(r"test rows = [0-9]+ \(must be >= 100000", failed), failed
        # bad values are named, and change nothing
        policy = ml.workspaces.get_rai_gate()
        for setting, field in (("rai_gate.required_checks=[acc>=x]", "rai_gate.required_checks"),
                               ("rai_gate.test_data=titanic-test@latest", "rai_gate.test_data"),
                               ("rai_gate.min_test_rows=0", "rai_gate.min_test_rows")):
            bad = cli("workspace", "update", "--set", setting)
            assert bad.returncode != 0 and field in bad.stderr, bad.stderr
        assert ml.workspaces.get_rai_gate() == policy
    finally:
        ml.workspaces.update_rai_gate(**before)
    assert verdict_of_v1() == ("pass", "")
