"""Issue 16: the built-in azureml registry's RAI components (resolution, read-only, errors that list
what exists) and the bad inputs of the RAI steps, each a clear error naming the input or column.

The steps run in this process through ``openaml.rai.__main__.main`` (the very entry point the
components' commands run) on small real models and data; one step runs as a subprocess to check the
job error file. The full pipelines on a server are in tests/test_rai_pipelines.py (the ``rai`` tier).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from openaml.errors import NotFoundError, OpenAMLError

RAI_NAMES = ("insight_constructor", "explanation", "erroranalysis", "counterfactual", "causal",
             "insight_gather", "score_card")


# ------------------------------------------------------------------------------------ registry
def test_registry_components_resolve_from_the_sdk_under_both_names(server: Any) -> None:
    from openaml import MLClient

    reg = MLClient(workspace=server.url, registry_name="azureml")
    for short in RAI_NAMES:
        for name in (f"rai_tabular_{short}", f"microsoft_azureml_rai_tabular_{short}"):
            comp = reg.components.get(name, label="latest")
            assert comp.name == name and comp.version == "0.22.0"  # Azure's newest (tests/test_rai_review16.py)
            assert reg.components.get(name, version="0.18.0").version == "0.18.0"
    explain = reg.components.get("rai_tabular_explanation", version="0.18.0")
    assert set(explain.inputs) == {"comment", "rai_insights_dashboard"} and set(explain.outputs) == {"explanation"}
    ea = reg.components.get("rai_tabular_erroranalysis", label="latest")
    assert {"max_depth", "num_leaves", "min_child_samples", "filter_features"} <= set(ea.inputs)
    names = {c.name for c in reg.components.list()}
    assert "rai_tabular_insight_gather" in names and "microsoft_azureml_rai_tabular_score_card" in names
    # read-only, and not in the workspace's own store
    with pytest.raises(OpenAMLError, match="read-only"):
        reg.components.create_or_update(explain)
    with pytest.raises(OpenAMLError, match="read-only"):
        reg.components.archive("rai_tabular_explanation")
    # its other operation groups are not silently the workspace's (review16 F12)
    for group in ("models", "environments", "data", "jobs"):
        with pytest.raises(OpenAMLError, match=f"registry_name='azureml'\\).{group}: .*built-in components only"):
            getattr(reg, group)
    ws = MLClient(workspace=server.url)
    assert "rai_tabular_explanation" not in {c.name for c in ws.components.list()}


def test_a_missing_registry_version_lists_the_versions_and_an_unknown_registry_lists_registries(server: Any) -> None:
    from openaml import MLClient

    reg = MLClient(workspace=server.url, registry_name="azureml")
    with pytest.raises(NotFoundError) as exc:
        reg.components.get("rai_tabular_explanation", version="0.0.1")
    assert "version '0.0.1' not found in registry 'azureml'; versions: 0.1.0, 0.2.0" in str(exc.value)
    with pytest.raises(NotFoundError, match="component 'rai_tabular_nope' not found in registry 'azureml'; its "
                                            "components: .*rai_tabular_causal"):
        reg.components.get("rai_tabular_nope", label="latest")
    with pytest.raises(NotFoundError, match="registry 'contoso' does not exist here; registries: azureml"):
        MLClient(workspace=server.url, registry_name="contoso").components.get("rai_tabular_explanation")


def _pipeline(tmp_path: Path, component: str) -> Path:
    (tmp_path / "p.yml").write_text(f"""
type: pipeline
jobs:
  explain:
    type: command
    component: {component}
    inputs:
      rai_insights_dashboard: {{type: uri_folder, path: ./}}
""")
    return tmp_path / "p.yml"


def test_a_pipeline_naming_a_registry_version_that_does_not_exist_is_refused_listing_versions(
        cli: Any, tmp_path: Path) -> None:
    r = cli("job", "create", "--file",
            str(_pipeline(tmp_path, "azureml://registries/azureml/components/rai_tabular_explanation/versions/0.23.0")))
    assert r.returncode != 0
    assert "version '0.23.0' not found in registry 'azureml'; versions: 0.1.0, 0.2.0" in r.stderr
    r = cli("component", "show", "--name", "rai_tabular_causal", "--registry-name", "azureml", "--label", "latest")
    assert r.returncode == 0 and r.json()["version"] == "0.22.0", r.stderr
    r = cli("component", "show", "--name", "rai_tabular_causal", "--registry-name", "azureml", "--version", "1")
    assert r.returncode != 0 and "versions: 0.1.0, 0.2.0" in r.stderr
    # the bare name in a workspace: the message says the registry is the missing piece
    r = cli("job", "create", "--file", str(_pipeline(tmp_path, "azureml:rai_tabular_explanation:0.18.0")))
    assert r.returncode != 0
    assert "azureml://registries/azureml/components/rai_tabular_explanation/labels/latest" in r.stderr


# ------------------------------------------------------------------------------------ bad inputs
@pytest.fixture(scope="module")
def heart(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Heart data (train/test MLTables) and three MLflow models: a classifier, a regressor, and a
    classifier trained without the column 'chol' (its signature does not match)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    root = tmp_path_factory.mktemp("heart")
    df = pd.read_csv(Path(__file__).resolve().parent / "data" / "heart.csv").drop(columns=["thal"])
    tr, te = df.iloc[:220], df.iloc[220:]
    for name, part in (("train", tr), ("test", te), ("test_no_target", te.drop(columns=["target"]))):
        (root / name).mkdir()
        part.to_parquet(root / name / "data.parquet")
        (root / name / "MLTable").write_text("paths:\n  - file: ./data.parquet\ntransformations:\n  - read_parquet\n")
    X, y = tr.drop(columns=["target"]), tr["target"]
    models = {"clf": RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y),
              "reg": RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y)}
    for key, m in models.items():
        mlflow.sklearn.save_model(m, str(root / key), signature=infer_signature(X, m.predict(X)),
                                  serialization_format="cloudpickle")
    Xs = X.drop(columns=["chol"])
    short = RandomForestClassifier(n_estimators=10, random_state=0).fit(Xs, y)
    mlflow.sklearn.save_model(short, str(root / "short"), signature=infer_signature(Xs, short.predict(Xs)),
                              serialization_format="cloudpickle")
    strings = tr.assign(sex=tr["sex"].map({0: "female", 1: "male"}))
    (root / "strings").mkdir()
    strings.to_parquet(root / "strings" / "data.parquet")
    return {k: root / k for k in ("train", "test", "test_no_target", "clf", "reg", "short", "strings")} | {"root": root}


def _step(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from openaml.rai.__main__ import main

    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().err


def _construct(heart: dict[str, Path], out: Path, *, model: str = "clf", test: str = "test", train: str = "train",
               task: str = "classification", categorical: str = "[]") -> list[str]:
    return ["constructor", "--title", "t", "--task_type", task, "--model_input", str(heart[model]),
            "--model_info", "heart:1", "--train_dataset", str(heart[train]), "--test_dataset", str(heart[test]),
            "--target_column_name", "target", "--categorical_column_names", categorical, "--output_path", str(out)]


@pytest.mark.parametrize(("case", "expected"), [
    ({"test": "test_no_target"}, "column 'target' is missing from the test data (input 'test_dataset')"),
    ({"train": "strings"}, "string features ['sex'] are not declared categorical; add them to input "
                           "'categorical_column_names'"),
    ({"model": "short"}, "the data has columns ['chol'] that the model's signature does not name"),
    ({"model": "reg"}, "input 'task_type': 'classification' but the model is a regressor (RandomForestRegressor)"),
    ({"model": "clf", "task": "regression"}, "input 'task_type': 'regression' but the model is a classifier"),
    ({"categorical": "[\"cp\", \"nope\"]"}, "input 'categorical_column_names': ['nope'] are not feature columns"),
])
def test_constructor_bad_inputs_name_the_input_and_write_nothing(heart: dict[str, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 case: dict[str, str], expected: str) -> None:
    out = tmp_path / "out"
    code, err = _step(_construct(heart, out, **case), capsys)
    assert code == 2
    assert expected in err
    assert not (out / "rai_insights.json").exists() and not (out / "predictions.json").exists()


@pytest.fixture(scope="module")
def dashboard(heart: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from openaml.rai.__main__ import main

    out = tmp_path_factory.mktemp("dash") / "c"
    main(_construct(heart, out))
    return out


def test_a_sensitive_feature_with_missing_values_is_named(dashboard: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from openaml.rai.__main__ import main

    holed = tmp_path / "holed"
    import shutil

    shutil.copytree(dashboard, holed)
    test = pd.read_parquet(holed / "test.parquet")
    test["sex"] = test["sex"].astype("float64")
    test.loc[test.index[:3], "sex"] = None
    test.to_parquet(holed / "test.parquet")
    code, err = _step(["fairness", "--rai_insights_dashboard", str(holed), "--sensitive_features", '["sex"]',
                       "--output_path", str(tmp_path / "f")], capsys)
    assert code == 2
    assert "input 'sensitive_features': column 'sex' has 3 missing value(s) in the test data" in err
    assert not (tmp_path / "f").exists()
    # and a clean one assesses
    main(["fairness", "--rai_insights_dashboard", str(dashboard), "--sensitive_features", '["sex"]',
          "--output_path", str(tmp_path / "ok")])
    report = json.loads((tmp_path / "ok" / "fairness.json").read_text())["data"]["sensitive_features"]["sex"]
    assert set(report["by_group"]) == {"0", "1"}
    assert set(report["difference"]) == {"selection_rate", "accuracy", "recall", "false_positive_rate"}
    assert report["ratio"]["selection_rate"] <= 1.0


def test_counterfactuals_not_found_for_some_rows_are_reported_per_row(dashboard: Path, tmp_path: Path) -> None:
    from openaml.rai.__main__ import main

    # only 'fbs' may vary: for most rows flipping it does not change the prediction
    main(["counterfactual", "--rai_insights_dashboard", str(dashboard), "--desired_class", "opposite",
          "--total_CFs", "2", "--features_to_vary", '["fbs"]', "--max_rows", "10",
          "--output_path", str(tmp_path / "cf")])
    data = json.loads((tmp_path / "cf" / "counterfactual.json").read_text())["data"]
    assert len(data["rows"]) == 10
    missing = [r for r in data["rows"] if r["error"]]
    assert missing, data["rows"]
    assert all(r["counterfactuals"] == [] and "no counterfactual found" in r["error"] for r in missing)
    assert all(r["original"]["fbs"] in (0, 1) for r in data["rows"])


def test_a_failing_step_writes_the_job_error_file(heart: dict[str, Path], tmp_path: Path) -> None:
    err_file = tmp_path / "error.txt"
    p = subprocess.run([sys.executable, "-m", "openaml.rai", *_construct(heart, tmp_path / "o", test="test_no_target")],
                       env={**os.environ, "OPENAML_ERROR_FILE": str(err_file)}, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2
    assert err_file.read_text().startswith("constructor: input 'target_column_name': column 'target' is missing")


def test_fairness_helper_mitigates_a_pipeline_with_exponentiated_gradient() -> None:
    """The SDK helper of a plain command job: ExponentiatedGradient refits the example's scikit-learn
    Pipeline (sample weights routed to its last step) and narrows the selection-rate gap across Sex."""
    from openaml.rai.fairness import comparison_table, mitigate

    examples = Path(__file__).resolve().parents[1] / "examples" / "titanic"
    sys.path.insert(0, str(examples / "src"))
    try:
        from train import build_pipeline
    finally:
        sys.path.pop(0)
    train = pd.read_parquet(examples / "rai" / "data" / "train" / "train.parquet")
    test = pd.read_parquet(examples / "rai" / "data" / "test" / "test.parquet")
    X, y, Xt, yt = train.drop(columns=["Survived"]), train["Survived"], test.drop(columns=["Survived"]), test["Survived"]
    model = build_pipeline(1.0, 200).fit(X, y)
    mitigated, comparison = mitigate(model, X, y, X[["Sex"]], Xt, yt, Xt[["Sex"]], method="exponentiated_gradient",
                                     constraint="demographic_parity")
    before = comparison["before"]["Sex"]["difference"]["selection_rate"]
    after = comparison["after"]["Sex"]["difference"]["selection_rate"]
    assert before > 0.5 and after < before / 2, (before, after)
    assert set(mitigated.predict(Xt)) <= {0, 1}
    table = comparison_table(comparison)
    assert list(table["metric"]) == ["selection_rate", "accuracy", "recall", "false_positive_rate"]
    with pytest.raises(Exception, match="input 'constraint': 'equal_opportunity'"):
        mitigate(model, X, y, X[["Sex"]], Xt, yt, Xt[["Sex"]], constraint="equal_opportunity")


def test_download_all_of_a_pipeline_holds_its_steps_named_outputs(cli: Any, ml_client: Any, tmp_path: Path) -> None:
    """What the RAI acceptance check relies on: the steps' outputs are not promoted to the pipeline."""
    from openaml import load_job

    (tmp_path / "p.yml").write_text("""
type: pipeline
settings: {default_compute: azureml:local}
jobs:
  make:
    command: echo made > ${{outputs.o}}/explanation.json
    outputs: {o: {type: uri_folder}}
""")
    name = ml_client.jobs.create_or_update(load_job(tmp_path / "p.yml")).name
    assert ml_client.jobs.wait(name, timeout=300).status == "Completed"
    r = cli("job", "download", "-n", name, "--all", "--download-path", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "d" / "make" / "named-outputs" / "o" / "explanation.json").read_text().strip() == "made"


def _insight(dashboard: Path, out: Path, step: str, *args: str) -> dict[str, Any]:
    from openaml.rai.__main__ import main

    main([step, "--rai_insights_dashboard", str(dashboard), "--output_path", str(out), *args])
    doc = next(f for f in sorted(out.glob("*.json")) if not f.name.startswith("_"))
    return dict(json.loads(doc.read_text())["data"])


def _walk(node: dict[str, Any], depth: int = 0) -> list[tuple[int, dict[str, Any]]]:
    return [(depth, node)] + [x for c in node["children"] for x in _walk(c, depth + 1)]


def test_error_analysis_is_erroranalysis_tree_matrix_and_importances(dashboard: Path, tmp_path: Path) -> None:
    """Microsoft's erroranalysis (as Azure's component): max_depth, num_leaves, min_child_samples and the
    heat map over filter_features; the root's errors are the model's wrong test predictions."""
    data = _insight(dashboard, tmp_path / "ea", "erroranalysis", "--max_depth", "2", "--num_leaves", "3",
                    "--min_child_samples", "5", "--filter_features", '["cp", "sex"]')
    test = pd.read_parquet(dashboard / "test.parquet")
    pred = json.loads((dashboard / "predictions.json").read_text())["y_pred"]
    wrong = sum(str(a) != str(b) for a, b in zip(test["target"], pred, strict=True))
    assert data["libraries"]["erroranalysis"] == "0.4.2" and "erroranalysis" in data["method"]
    root = data["tree"]
    assert (root["n"], root["errors"], root["condition"]) == (len(test), wrong, None)
    assert root["error_rate"] == pytest.approx(wrong / len(test))
    nodes = _walk(root)
    assert max(d for d, _ in nodes) <= 2 and 2 <= sum(1 for _, n in nodes if not n["children"]) <= 3
    for _, n in nodes:
        if n["children"]:
            assert sum(c["n"] for c in n["children"]) == n["n"] and all(c["condition"] for c in n["children"])
            assert all(c["n"] >= 5 for c in n["children"])
    cells = data["heatmap"]["cells"]
    assert data["heatmap"]["features"] == ["cp", "sex"] and data["heatmap"]["method"] == "erroranalysis compute_matrix"
    assert sum(c["n"] for c in cells) == len(test) and sum(c["errors"] for c in cells) == wrong
    assert {tuple(c["bin"]) for c in cells} == {(str(a), str(b)) for a, b in zip(test["cp"], test["sex"], strict=True)}
    assert set(data["feature_importance"]) == set(test.columns) - {"target"} and data["deviations"] == []


def test_error_analysis_importances_are_the_same_every_time(dashboard: Path, tmp_path: Path) -> None:
    # mutual information jitters continuous features with numpy's global generator: seeded (a warm
    # step and a cold one, or two runs, gave different dashboards), and the caller's generator is left as it was
    import numpy as np

    np.random.seed(7)
    expected_next = np.random.random()
    np.random.seed(7)
    first = _insight(dashboard, tmp_path / "ea1", "erroranalysis")["feature_importance"]
    assert np.random.random() == expected_next
    np.random.seed(8)
    assert _insight(dashboard, tmp_path / "ea2", "erroranalysis")["feature_importance"] == first


def test_error_analysis_over_missing_values_falls_back_and_says_so(dashboard: Path, tmp_path: Path) -> None:
    """erroranalysis 0.4.2 cannot bin a numeric feature with missing values in rows the model gets wrong
    (IndexError in compute_matrix): openaml's binning replaces that heat map and the deviation is
    recorded (the tree is still erroranalysis')."""
    import shutil

    holed = tmp_path / "holed"
    shutil.copytree(dashboard, holed)
    test = pd.read_parquet(holed / "test.parquet")
    pred = json.loads((holed / "predictions.json").read_text())["y_pred"]
    wrong = [i for i, (a, b) in enumerate(zip(test["target"], pred, strict=True)) if str(a) != str(b)]
    test["chol"] = test["chol"].astype("float64")
    test.loc[test.index[wrong[:3]], "chol"] = None
    test.to_parquet(holed / "test.parquet")
    data = _insight(holed, tmp_path / "ea", "erroranalysis", "--filter_features", '["chol"]')
    assert data["tree"]["n"] == len(test)
    assert data["heatmap"]["method"] == "openaml quartile binning"
    assert sum(c["n"] for c in data["heatmap"]["cells"]) == len(test)
    assert any("heat map: erroranalysis compute_matrix failed on ['chol']" in d for d in data["deviations"])


def test_explanation_is_a_mimic_explainer_with_shap_values(dashboard: Path, tmp_path: Path) -> None:
    """responsibleai's method: a LightGBM surrogate of the model, SHAP TreeExplainer values on the test rows."""
    data = _insight(dashboard, tmp_path / "e", "explanation", "--comment", "c")
    test = pd.read_parquet(dashboard / "test.parquet")
    features = [c for c in test.columns if c != "target"]
    local = data["local_importance"]
    assert len(local) == len(test) and all(len(r) == len(features) for r in local)
    assert {k: round(v, 4) for k, v in data["global_importance"].items()} == \
        {f: round(sum(abs(r[j]) for r in local) / len(local), 4) for j, f in enumerate(features)}
    assert set(data["libraries"]) == {"shap", "lightgbm"} and "shap TreeExplainer" in data["method"]
    assert data["surrogate_accuracy"] > 0.8 and isinstance(data["expected_value"], float)


def test_causal_is_econml_causal_analysis(dashboard: Path, tmp_path: Path) -> None:
    data = _insight(dashboard, tmp_path / "c", "causal", "--treatment_features", '["age", "chol"]',
                    "--random_state", "0")
    assert data["libraries"]["econml"] and data["method"].startswith("econml CausalAnalysis (nuisance linear")
    effects = {e["feature"]: e for e in data["global_effects"]}
    assert set(effects) == {"age", "chol"}
    for e in effects.values():
        assert e["ci_lower"] <= e["point"] <= e["ci_upper"] and 0 <= e["p_value"] <= 1 and e["stderr"] > 0


def test_counterfactuals_run_dice_ml_or_say_what_replaced_it(dashboard: Path, tmp_path: Path) -> None:
    import importlib.util

    data = _insight(dashboard, tmp_path / "cf", "counterfactual", "--desired_class", "opposite", "--total_CFs", "2",
                    "--max_rows", "2")
    if importlib.util.find_spec("dice_ml") is not None:
        assert data["method"] == "dice-ml Dice(method='random')" and data["deviations"] == []
        assert "dice-ml" in data["libraries"]
    else:
        assert data["deviations"] == ["counterfactuals: dice-ml is not installed (optional extra openaml[rai-dice]); "
                                      "openaml's random search was used (method 'random' asked)"]
    assert len(data["rows"]) == 2


@pytest.mark.parametrize("classes", [["0", "1"], None])
def test_gather_metrics_are_scikit_learns(classes: list[str] | None) -> None:
    """The gather step computes its metrics with numpy (no scikit-learn import): the same values."""
    import numpy as np
    from sklearn import metrics as m

    from openaml.rai._gather import metrics_of

    rng = np.random.default_rng(0)
    yt, yp = rng.integers(0, 2 if classes else 3, 200), rng.integers(0, 2 if classes else 3, 200)
    yp[:5] = 0
    kw: dict[str, Any] = {"pos_label": "1", "average": "binary"} if classes else {"average": "macro"}
    st, sp = yt.astype(str), yp.astype(str)
    got = metrics_of("classification", yt, yp, classes)
    assert got == pytest.approx({"accuracy": m.accuracy_score(st, sp),
                                 "precision": m.precision_score(st, sp, zero_division=0, **kw),
                                 "recall": m.recall_score(st, sp, zero_division=0, **kw),
                                 "f1": m.f1_score(st, sp, zero_division=0, **kw)})
    assert metrics_of("classification", ["1", "1"], ["0", "0"], classes)["precision"] == 0.0  # zero_division=0
    ft, fp = rng.normal(size=50), rng.normal(size=50)
    assert metrics_of("regression", ft, fp, None) == pytest.approx(
        {"mae": m.mean_absolute_error(ft, fp), "rmse": m.root_mean_squared_error(ft, fp), "r2": m.r2_score(ft, fp)})
    assert metrics_of("regression", [2.0, 2.0], [2.0, 2.0], None)["r2"] == m.r2_score([2.0, 2.0], [2.0, 2.0])


def test_steps_log_metrics_through_mlflows_rest_api(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The steps log to their run with httpx (MLflow's runs/log-batch), not the mlflow client: the values
    land on the run; NaN is left out."""
    from mlflow.tracking import MlflowClient

    from openaml.rai.__main__ import _log_metrics

    client = MlflowClient(tracking_uri=f"{server.url}/mlflow")
    exp = client.create_experiment("rai-rest-metrics")
    run = client.create_run(exp)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"{server.url}/mlflow")
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    _log_metrics({"accuracy": 0.75, "rows": 3, "nan": float("nan"), "text": "x"})
    assert client.get_run(run.info.run_id).data.metrics == {"accuracy": 0.75, "rows": 3.0}


def test_models_and_mltables_are_read_as_mlflow_and_mltable_read_them(heart: dict[str, Path], tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast paths (no mlflow or mltable import) give the same estimator predictions, signature and
    frame; with MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false mlflow decides (and refuses)."""
    import mlflow.sklearn
    import mltable
    import numpy as np
    from mlflow.exceptions import MlflowException

    from openaml.rai._io import _load_sklearn_directly, _read_simple_mltable, load_model

    test = pd.read_parquet(heart["test"] / "data.parquet").drop(columns=["target"])
    skops_dir = tmp_path / "skops"
    mlflow.sklearn.save_model(mlflow.sklearn.load_model(str(heart["clf"])), str(skops_dir),
                              serialization_format="skops", skops_trusted_types=["sklearn.tree._tree.Tree"])
    for folder in (heart["clf"], skops_dir):
        fast = _load_sklearn_directly(Path(folder) / "MLmodel")
        assert fast is not None
        ref = mlflow.sklearn.load_model(str(folder))
        assert np.array_equal(fast.predict(test), ref.predict(test))
        assert np.allclose(fast.predict_proba(test), ref.predict_proba(test))
    assert load_model(heart["clf"]).input_names == list(test.columns)
    assert _read_simple_mltable(heart["train"]).equals(mltable.load(str(heart["train"])).to_pandas_dataframe())
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    assert _load_sklearn_directly(heart["clf"] / "MLmodel") is None
    with pytest.raises(MlflowException, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        load_model(heart["clf"])


# ------------------------------------------------------------------------------------ warm process
def test_only_the_builtin_components_exact_commands_on_the_servers_environment_are_served_warm(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """services._warm_steps.warm_process, the server's decision (the warm process itself:
    tests/test_rai_warm.py, the rai tier): the job's command must be a built-in component's, on the
    server's environment, without code, one process, no PYTHON*/LD_* variable; the workspace policy last."""
    from types import SimpleNamespace

    from openaml.rai.registry import builtin_component
    from openaml.services._warm_steps import warm_process

    users: list[str] = []
    ctx = SimpleNamespace(services={"users": SimpleNamespace(list=lambda: users)})
    command = builtin_component("azureml", "rai_tabular_explanation", None, "latest")["command"]

    def row(**spec: Any) -> dict[str, Any]:
        rt = spec.pop("runtime", {"environment": {"kind": "base"}})
        return {"spec": {"type": "command", "command": command, **spec}, "runtime": rt}

    monkeypatch.delenv("OPENAML_RAI_WARM", raising=False)
    assert warm_process(ctx, row()) == "rai"
    assert warm_process(ctx, row(command=command + " ; cat server.token")) is None
    assert warm_process(ctx, row(command="python -m openaml.rai explanation --output_path x")) is None
    assert warm_process(ctx, row(runtime={"environment": {"kind": "conda", "spec_hash": "x"}})) is None
    assert warm_process(ctx, row(runtime={"environment": {"kind": "base"}, "code_dir": "/tmp/code"})) is None
    assert warm_process(ctx, row(environment_variables={"PYTHONPATH": "/tmp/mine"})) is None
    assert warm_process(ctx, row(environment_variables={"OPENAML_RAI_WARM": "0"})) is None
    assert warm_process(ctx, row(resources={"instance_count": 2})) is None
    users.append("ann")  # a workspace with users: off, unless the administrator turns it on
    assert warm_process(ctx, row()) is None
    monkeypatch.setenv("OPENAML_RAI_WARM", "1")
    assert warm_process(ctx, row()) == "rai"
    monkeypatch.setenv("OPENAML_RAI_WARM", "0")
    users.clear()
    assert warm_process(ctx, row()) is None
