"""The studio's Responsible AI dashboard pages (``/jobs/<name>/rai``, ``/models/<name>/rai``) over HTTP
against a real server, on a ``dashboard.json`` written by a real pipeline step (tests/rai_fixture.py
builds it from a scikit-learn model on the Titanic data)."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from openaml.server.studio._rai_data import apply_filter, parse_filter
from tests.rai_fixture import HOSTILE, HOSTILE_VALUE, TITANIC, submit_dashboard_pipeline, write_dashboard

HTML = {"Accept": "text/html"}
MODEL = "rai-studio-model"


def _page(url: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.get(url + path, headers=HTML, timeout=120, **kw)


@pytest.fixture(scope="module")
def rai_job(cli, tmp_path_factory) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A pipeline whose ``gather`` step writes the dashboard of model ``rai-studio-model:1``."""
    return submit_dashboard_pipeline(cli, tmp_path_factory.mktemp("rai-studio"), MODEL)


def test_pipeline_page_draws_every_view(server, rai_job):
    r = _page(server.url, f"/jobs/{rai_job['name']}/rai")
    assert r.status_code == 200
    page = r.text
    for anchor in ('id="verdict"', 'id="cohorts"', 'id="ea-tree"', 'id="ea-heatmap"', 'id="global-importance"',
                   'id="local-importance"', 'id="cf-table"', 'id="causal-table"', 'id="causal-chart"',
                   'class="grid fairness-table"', 'id="mitigation"'):
        assert anchor in page, anchor
    data = rai_job["data"]
    assert re.search(r'id="verdict">pass<', page)
    # the error-analysis tree: one box per node (depth 3: up to 15), the root holding every test row
    assert page.count('class="ea-node"') >= 3
    root = data["error_analysis"]["tree"]
    assert f"{root['errors']}/{root['n']} errors" in page
    # the heat map has a cell per bin, its counts from the file
    cell = data["error_analysis"]["heatmap"]["cells"][0]
    assert page.count('class="hm-cell"') == len(data["error_analysis"]["heatmap"]["cells"])
    assert f"{cell['errors']}/{cell['n']}" in page
    # a bar per feature in the global importance chart; the causal effects with their intervals
    assert page.count("<g class=\"bar\">") >= len(data["features"])
    assert page.count('class="ci"') == len(data["causal"]["global_effects"])
    # fairness by Sex: both groups, difference and ratio; the score card's checks
    assert "By Sex" in page and "female" in page and 'class="difference"' in page and 'class="ratio"' in page
    assert page.count('class="check"') == len(data["scorecard"]["checks"])
    # the mitigation's before/after, per sensitive feature
    mit = page.split('id="mitigation"', 1)[1].split("</table>", 1)[0]
    after = data["fairness"]["mitigation"]["after"]["Sex"]["difference"]["selection_rate"]
    before = data["fairness"]["sensitive_features"]["Sex"]["difference"]["selection_rate"]
    assert f"<td>selection_rate difference (Sex)</td><td>{before:.4g}</td><td>{after:.4g}</td>" in mit
    # the job page links to it
    job_page = _page(server.url, f"/jobs/{rai_job['name']}").text
    assert f'href="/jobs/{rai_job["name"]}/rai"' in job_page


def test_feature_names_and_values_are_escaped(server, rai_job):
    row = next(i for i, r in enumerate(rai_job["data"]["test"]["rows"]) if r[HOSTILE] == HOSTILE_VALUE)
    page = _page(server.url, f"/jobs/{rai_job['name']}/rai", params={"row": str(row)}).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "Deck &lt;script&gt;alert(&#39;f&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "Titanic survival &lt;model&gt;" in page


def test_user_cohort_from_query_parameters(server, rai_job):
    data = rai_job["data"]
    filters = ["Sex==female", "Age>=30"]
    idx = apply_filter(data["test"]["rows"], [parse_filter(f, data["features"]) for f in filters])
    expect_acc = sum(data["test"]["y_true"][i] == data["test"]["y_pred"][i] for i in idx) / len(idx)
    page = _page(server.url, f"/jobs/{rai_job['name']}/rai", params=[("f", f) for f in filters]).text
    row = page.split('id="user-cohort"', 1)[1].split("</tr>", 1)[0]
    assert "Sex == female and Age &gt;= 30" in row
    assert f"<td>{len(idx)}</td>" in row
    assert f"<td>{expect_acc:.4g}</td>" in row
    # a bad filter says why and keeps the page
    bad = _page(server.url, f"/jobs/{rai_job['name']}/rai", params={"f": "Nope==1"})
    assert bad.status_code == 200 and "unknown column &#39;Nope&#39;" in bad.text and 'id="user-cohort"' not in bad.text


def test_a_non_numeric_ordering_filter_is_named_and_the_whole_data_is_one_row(server, rai_job):
    """Review minors: ``Age>=abc`` was silent (matched nothing); the gather's "All data" cohort was shown
    beside the Overall row (two rows of the same rows)."""
    bad = _page(server.url, f"/jobs/{rai_job['name']}/rai", params={"f": "Age>=abc"})
    assert bad.status_code == 200 and 'id="user-cohort"' not in bad.text
    assert "&#39;abc&#39; is not a number" in bad.text
    table = _page(server.url, f"/jobs/{rai_job['name']}/rai").text.split('id="cohorts"', 1)[1].split("</table>", 1)[0]
    assert table.count("<b>Overall</b>") == 1 and "All data" not in table


def test_local_importance_of_a_picked_row(server, rai_job):
    data = rai_job["data"]
    page = _page(server.url, f"/jobs/{rai_job['name']}/rai", params={"row": "5"}).text
    assert "Local: row 5" in page
    table = page.split('id="local-table"', 1)[1].split("</table>", 1)[0]
    row = data["test"]["rows"][5]
    contrib = dict(zip(data["features"], data["explanation"]["local_importance"][5], strict=True))
    top = max(contrib, key=lambda f: abs(contrib[f]))
    first = table.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert f"<td>{row[top]}</td>" in first and f"{contrib[top]:.4g}" in first
    assert f'id="local-pred">{data["test"]["y_pred"][5]}<' in page


def test_counterfactuals_highlight_changes_and_show_errors(server, rai_job):
    rows = rai_job["data"]["counterfactual"]["rows"]
    ok = next(r for r in rows if r["counterfactuals"])
    page = _page(server.url, f"/jobs/{rai_job['name']}/rai", params={"cf": str(ok["index"])}).text
    table = page.split('id="cf-table"', 1)[1].split("</table>", 1)[0]
    assert table.count('class="cf"') == len(ok["counterfactuals"])
    changed = sum(1 for c in ok["counterfactuals"] for f in ("Age", "Fare") if c[f] != ok["original"][f])
    assert table.count('class="changed"') == changed > 0
    failed = next(r for r in rows if r["error"])
    page = _page(server.url, f"/jobs/{rai_job['name']}/rai", params={"cf": str(failed["index"])}).text
    assert 'id="cf-error"' in page and "no counterfactual found" in page and 'id="cf-table"' not in page


def test_model_version_page_finds_its_dashboard(server, rai_job):
    page = _page(server.url, f"/models/{MODEL}/rai", params={"version": "1"})
    assert page.status_code == 200 and 'id="verdict"' in page.text and rai_job["name"] in page.text
    # version 2 is named by no dashboard
    other = _page(server.url, f"/models/{MODEL}/rai", params={"version": "2"})
    assert other.status_code == 200 and 'id="no-dashboard"' in other.text
    assert f'href="/models/{MODEL}/rai?version=1"' in _page(server.url, f"/models/{MODEL}", params={"version": "1"}).text
    assert _page(server.url, "/models/no-such-model-xyz/rai").status_code == 404


def _pick(page: str, output: str) -> str:
    """The ``d`` index of the dashboard in ``output`` (the page lists the others as links)."""
    return re.findall(rf'd=(\d+)">[^<]*/{output}</a>', page)[0]


def test_another_schema_is_reported_not_drawn(server, rai_job):
    page = _page(server.url, f"/jobs/{rai_job['name']}/rai").text
    bad = _page(server.url, f"/jobs/{rai_job['name']}/rai", params={"d": _pick(page, "other")})
    assert bad.status_code == 200 and 'id="dashboard-error"' in bad.text and "something/9" in bad.text
    # the schema's name with other shapes is reported the same (review16 F14: it was a 500)
    odd = _page(server.url, f"/jobs/{rai_job['name']}/rai", params={"d": _pick(page, "shapeless")})
    assert odd.status_code == 200 and 'id="dashboard-error"' in odd.text and "does not have the shape" in odd.text


def test_a_dashboard_without_insights_draws_what_it_has(server, rai_job):
    """Every insight may be null (schema): a regression dashboard with metrics only."""
    page = _page(server.url, f"/jobs/{rai_job['name']}/rai").text
    r = _page(server.url, f"/jobs/{rai_job['name']}/rai", params=[("d", _pick(page, "minimal")), ("f", "x>=3")])
    assert r.status_code == 200 and "no score card in this dashboard" in r.text
    for absent in ('id="ea-tree"', 'id="global-importance"', 'id="cf-table"', 'id="causal-table"', "By Sex"):
        assert absent not in r.text
    row = r.text.split('id="user-cohort"', 1)[1].split("</tr>", 1)[0]
    assert "<td>2</td>" in row and "<td>0.25</td>" in row  # mae of rows x=3, x=4: (0.5 + 0) / 2


def test_unknown_job_is_a_404(server):
    assert _page(server.url, "/jobs/no-such-job-xyz/rai").status_code == 404


def test_fixture_has_the_contract_fields():
    """The fixture writes every field of the schema in COMMON.md (the rai helper's gather output)."""
    data = json.loads(write_dashboard(Path("/tmp") / f"rai-fixture-{id(object())}", "m", "1").read_text())
    for key in ("schema", "title", "task_type", "model", "target_column", "classes", "features",
                "categorical_features", "test", "metrics", "cohorts", "explanation", "error_analysis",
                "counterfactual", "causal", "fairness", "scorecard", "libraries"):
        assert key in data
    assert HOSTILE in data["features"] and any(r[HOSTILE] == HOSTILE_VALUE for r in data["test"]["rows"])


# ---------------------------------------------------------------------------- explanations from jobs
@pytest.fixture(scope="module")
def shap_job(cli, tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    """A training job that logs MLflow's SHAP explanation (default folder) and, with
    openaml.tracking.log_explanation, a named one (folder ``named_shap``); one feature name holds HTML."""
    d = tmp_path_factory.mktemp("shap-job")
    (d / "src").mkdir()
    shutil.copy(TITANIC, d / "src" / "titanic.csv")
    (d / "src" / "train.py").write_text(textwrap.dedent("""\
        import mlflow, mlflow.shap, pandas as pd
        from sklearn.linear_model import LogisticRegression
        from openaml.tracking import log_explanation
        df = pd.read_csv("titanic.csv")
        X = pd.DataFrame({"Pclass": df.Pclass, "is_female": (df.Sex == "female").astype(int),
                          "Age": df.Age.fillna(28.0), "SibSp": df.SibSp, "Parch": df.Parch,
                          "Fare <b>x</b>": df.Fare})
        model = LogisticRegression(max_iter=1000).fit(X.to_numpy(), df.Survived)
        with mlflow.start_run():
            mlflow.shap.log_explanation(model.predict_proba, X.iloc[:12].to_numpy())
            log_explanation(lambda a: model.predict_proba(a)[:, 1], X.iloc[:12], artifact_path="named_shap")
        """))
    (d / "job.yml").write_text("type: command\ncode: src\ncommand: python train.py\nexperiment_name: studio-rai\n")
    name = cli("job", "create", "--file", str(d / "job.yml"), "-o", "json", check=True).json()["name"]
    cli("job", "stream", "--name", name, timeout=600)
    job = cli("job", "show", "--name", name, "-o", "json", check=True).json()
    assert job["status"] == "Completed", job.get("error")
    return name


def _npy(url: str, job: str, rel: str) -> Any:
    import io

    import numpy as np

    r = httpx.get(f"{url}/jobs/{job}/files/artifacts/{rel}", timeout=60)
    r.raise_for_status()
    return np.load(io.BytesIO(r.content), allow_pickle=False)


def test_shap_explanation_of_a_job_on_its_run_page(server, shap_job):
    job_page = _page(server.url, f"/jobs/{shap_job}").text
    assert f'href="/jobs/{shap_job}/explanations"' in job_page
    page = _page(server.url, f"/jobs/{shap_job}/explanations").text
    assert page.count('<section class="shap"') == 2
    plain = page.split('data-path="model_explanations_shap"', 1)[1].split("</section>", 1)[0]
    named = page.split('data-path="named_shap"', 1)[1].split("</section>", 1)[0]
    # MLflow's own folder: no names recorded, two outputs (predict_proba); the positive class shown
    values = _npy(server.url, shap_job, "model_explanations_shap/shap_values.npy")
    assert values.shape == (12, 6, 2)
    mean_abs = abs(values[:, :, 1]).mean(axis=0)
    top = int(mean_abs.argmax())
    first_bar = plain.split('id="shap-global"', 1)[1].split("</g>", 1)[0]
    assert f">feature {top}<" in first_bar and f"{mean_abs[top]:.4g}" in first_bar
    assert "summary_bar_plot.png" in plain
    # openaml's helper: named features (escaped), the row's values beside its SHAP values
    nv = _npy(server.url, shap_job, "named_shap/shap_values.npy")
    names = ["Pclass", "is_female", "Age", "SibSp", "Parch", "Fare <b>x</b>"]
    top_named = names[int(abs(nv).mean(axis=0).argmax())]
    first = named.split('id="shap-global"', 1)[1].split("</g>", 1)[0]
    assert (top_named.replace("<", "&lt;").replace(">", "&gt;")) in first
    assert "Fare &lt;b&gt;x&lt;/b&gt;" in named and "<b>x</b>" not in page
    row3 = _page(server.url, f"/jobs/{shap_job}/explanations", params={"row": "3"}).text
    named3 = row3.split('data-path="named_shap"', 1)[1].split("</section>", 1)[0]
    assert "Local: row 3" in named3
    contrib = dict(zip(names, nv[3], strict=True))
    best = max(contrib, key=lambda f: abs(contrib[f]))
    first_row = named3.split('shap-local-table', 1)[1].split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert f"{contrib[best]:.4g}" in first_row


def test_a_job_without_explanations_says_how_to_log_one(server, rai_job):
    page = _page(server.url, f"/jobs/{rai_job['name']}/explanations")
    assert page.status_code == 200 and 'id="no-explanations"' in page.text
    assert "explanations-link" not in _page(server.url, f"/jobs/{rai_job['name']}").text
    assert _page(server.url, "/jobs/no-such-job-xyz/explanations").status_code == 404


@pytest.mark.slow
def test_automl_explanations_show_on_the_automl_job_and_its_trial(ml_client, server, tmp_path):
    """AutoML's ``enable_model_explainability`` output (permutation importance of the best model)."""
    from tests.test_automl import _frame, _job, _mltable

    job = ml_client.jobs.create_or_update(_job(_mltable(tmp_path / "d", _frame())))
    ml_client.jobs.wait(job.name, timeout=900)
    raw = ml_client.jobs.get_raw(job.name)
    assert raw["status"] == "Completed", raw.get("error")
    page = _page(server.url, f"/jobs/{job.name}/explanations").text
    assert 'class="automl-importance"' in page and raw["best_child_run_id"] in page
    top = raw["feature_importance"][0]
    assert f"<td>{top['feature']}</td>" in page
    assert f'href="/jobs/{job.name}/explanations"' in _page(server.url, f"/jobs/{job.name}").text
    trial = _page(server.url, f"/jobs/{raw['best_child_run_id']}/explanations").text
    assert "outputs/explanation/global_importance.json" in trial and f"<td>{top['feature']}</td>" in trial


def test_mitigation_in_either_shape():
    """before/after as ``{metric: value}`` or per sensitive feature (fairlearn's report)."""
    from openaml.server.studio._rai import mitigation_rows

    flat = mitigation_rows({"before": {"accuracy": 0.8}, "after": {"accuracy": 0.78, "dp": 0.1}})
    assert flat == [{"label": "accuracy", "before": 0.8, "after": 0.78}, {"label": "dp", "before": None, "after": 0.1}]
    nested = mitigation_rows({"before": {"Sex": {"difference": {"selection_rate": 0.5}, "overall": {"recall": 0.7}}},
                              "after": {"Sex": {"difference": {"selection_rate": 0.1}}}})
    assert nested == [{"label": "recall (Sex)", "before": 0.7, "after": None},
                      {"label": "selection_rate difference (Sex)", "before": 0.5, "after": 0.1}]
    assert mitigation_rows(None) == []



def test_cohort_filters_and_changed_values():
    """Filters compare numbers as numbers (``Pclass in 1,2`` matches 1 and 2.0) and text as text; a
    counterfactual's 3.0 for an original 3 is not a change."""
    from openaml.server.studio._rai_data import same_value

    rows = [{"Pclass": 1, "Sex": "male"}, {"Pclass": 2.0, "Sex": "female"}, {"Pclass": 3, "Sex": "female"}]
    feats = ["Pclass", "Sex"]
    assert apply_filter(rows, [parse_filter("Pclass in 1,2", feats)]) == [0, 1]
    assert apply_filter(rows, [parse_filter("Sex!=male", feats), parse_filter("Pclass>2", feats)]) == [2]
    assert apply_filter(rows, [parse_filter("Sex<3", feats)]) == []  # text is not ordered against a number
    with pytest.raises(ValueError, match="unknown column 'Age'; the features are Pclass, Sex"):
        parse_filter("Age>3", feats)
    assert same_value(3, 3.0) and not same_value(3, 4) and not same_value("a", "b")
