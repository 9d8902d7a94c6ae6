"""Conformance: azureml-examples ``cli/endpoints/online/managed/sample`` and ``cli/endpoints/online/ncd``.

The YAML files under tests/conformance/endpoints/ are copies of the public ones, unchanged; the
scoring scripts are ours (same contract: model-1 a plain ``run(raw_data)``, model-2 inference-schema
decorators) and the models, binary files in the public repository, are regenerated here (see
tests/conformance/endpoints/README.md). Each deployment is created with the real CLI from its
folder, as the public scripts do, and its sample request must return the model's own predictions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

CONFORMANCE = Path(__file__).resolve().parent / "conformance" / "endpoints"
DIABETES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
IRIS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def _regressor(alpha: float) -> Any:
    """model-1 / model-2: a scikit-learn regressor on the diabetes data (10 features), as the sample's pickles."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    return Ridge(alpha=alpha).fit(x, y)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/conformance/endpoints laid out as azureml-examples' cli/endpoints/online, models generated."""
    import joblib

    root = tmp_path_factory.mktemp("online")
    shutil.copytree(CONFORMANCE, root, dirs_exist_ok=True)
    for folder, alpha in (("model-1", 1.0), ("model-2", 0.1)):
        (root / folder / "model").mkdir(parents=True, exist_ok=True)
        joblib.dump(_regressor(alpha), root / folder / "model" / "sklearn_regression_model.pkl")
    return root


def _expected(path: Path, request: Path) -> list[float]:
    import joblib
    import numpy as np

    model = joblib.load(path)
    return [float(v) for v in model.predict(np.array(json.loads(request.read_text())["data"]))]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # two environments built with uv from the conda files (minutes on a busy machine)
def test_managed_sample_blue_green(cli: Any, tree: Path) -> None:
    """endpoint.yml, blue (model-1) and green (model-2) created unchanged; sample-request.json answered."""
    sample = tree / "managed" / "sample"
    cli("online-endpoint", "create", "-f", "endpoint.yml", cwd=sample, check=True)
    try:
        cli("online-deployment", "create", "-f", "blue-deployment.yml", "--all-traffic", cwd=sample, check=True,
            timeout=600)
        cli("online-deployment", "create", "-f", "green-deployment.yml", cwd=sample, check=True, timeout=600)
        request = tree / "model-1" / "sample-request.json"
        out = cli("online-endpoint", "invoke", "-n", "my-endpoint", "--request-file", str(request), check=True)
        want1 = _expected(tree / "model-1" / "model" / "sklearn_regression_model.pkl", request)
        assert json.loads(out.stdout) == pytest.approx(want1)
        request2 = tree / "model-2" / "sample-request.json"
        out = cli("online-endpoint", "invoke", "-n", "my-endpoint", "--deployment-name", "green", "--request-file",
                  str(request2), check=True)
        want2 = _expected(tree / "model-2" / "model" / "sklearn_regression_model.pkl", request2)
        assert json.loads(out.stdout) == {"output": pytest.approx(want2)}
        show = cli("online-endpoint", "show", "-n", "my-endpoint", check=True).json()
        assert show["traffic"] == {"blue": 100}
        # model-2's inference-schema decorators describe its input and output in the swagger document
        import httpx

        key = cli("online-endpoint", "get-credentials", "-n", "my-endpoint", check=True).json()["primaryKey"]
        assert httpx.get(show["swagger_uri"], trust_env=False, timeout=30).status_code == 401  # as Azure's
        doc = httpx.get(show["swagger_uri"], headers={"azureml-model-deployment": "green",
                                                      "Authorization": f"Bearer {key}"}, trust_env=False,
                        timeout=30).json()
        assert "data" in doc["definitions"]["ServiceInput"]["properties"]
        assert doc["paths"]["/score"]["post"]["parameters"][0]["schema"] == {"$ref": "#/definitions/ServiceInput"}
        assert "output" in doc["definitions"]["ServiceOutput"]["properties"]
    finally:
        cli("online-endpoint", "delete", "-n", "my-endpoint", "--yes")


def _mlflow_models(root: Path) -> dict[str, tuple[Path, list[str], Any]]:
    import lightgbm
    import mlflow.lightgbm
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.linear_model import LinearRegression

    d = load_diabetes(as_frame=True)
    x = d.data[DIABETES]
    reg = LinearRegression().fit(x, d.target)
    sk = root / "ncd" / "sklearn-diabetes" / "model"
    mlflow.sklearn.save_model(reg, str(sk), signature=infer_signature(x, reg.predict(x)))
    i = load_iris(as_frame=True)
    xi = i.data[IRIS]
    clf = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(xi, i.target)
    lg = root / "ncd" / "lightgbm-iris" / "model"
    mlflow.lightgbm.save_model(clf, str(lg), signature=infer_signature(xi, clf.predict(xi)))
    return {"sklearn": (sk, DIABETES, x.head(2)), "lightgbm": (lg, IRIS, xi.iloc[[0, 75]])}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ncd_sklearn_and_lightgbm_mlflow_deployments(cli: Any, tree: Path) -> None:
    """No-code MLflow deployments from the unchanged YAML; input_data sample requests answered."""
    import mlflow.pyfunc

    pytest.importorskip("lightgbm")
    models = _mlflow_models(tree)
    ncd = tree / "ncd"
    cli("online-endpoint", "create", "-n", "ncd-endpoint", check=True)
    try:
        for kind, (path, columns, rows) in models.items():
            cli("online-deployment", "create", "-f", f"{kind}-deployment.yaml", "--endpoint", "ncd-endpoint",
                cwd=ncd, check=True, timeout=600)
            request = ncd / f"sample-request-{kind}.json"
            request.write_text(json.dumps({"input_data": {"columns": columns, "index": list(range(len(rows))),
                                                          "data": rows.values.tolist()}}))
            out = cli("online-endpoint", "invoke", "-n", "ncd-endpoint", "--deployment-name", f"{kind}-deployment",
                      "--request-file", str(request), check=True)
            want = mlflow.pyfunc.load_model(str(path)).predict(rows).tolist()
            assert json.loads(out.stdout) == pytest.approx(want)
        shown = cli("online-deployment", "show", "-n", "sklearn-deployment", "-e", "ncd-endpoint", check=True).json()
        assert shown["provisioning_state"] == "Succeeded"
    finally:
        cli("online-endpoint", "delete", "-n", "ncd-endpoint", "--yes")
