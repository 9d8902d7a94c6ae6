"""``python -m openaml.rai <step> ...``: what the built-in RAI components run (see components/*.yml).

Steps: constructor, explanation, erroranalysis, counterfactual, causal, fairness, gather, scorecard.
A bad input ends the step with exit code 2 and one message naming the input (the job's error);
the step writes nothing to its output before its inputs are checked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]

# where a step's wall time goes (bench/rai.py reads it): seconds since the process started
_MARKS: dict[str, float] = {}


def _mark(what: str) -> None:
    _MARKS[what] = time.time()


def _process_start() -> float:
    """When this process started (epoch seconds, to the clock tick: ``/proc/self/stat``'s start time
    against the boot-time clock; psutil's ``create_time`` is off by up to a second, its boot time
    being whole seconds). A step forked from the warm process has it in ``_MARKS`` already."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        since = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - since
    except (OSError, ValueError, IndexError, AttributeError):  # not Linux: the timing file is informative only
        return _MARKS.get("main", time.time())


def _write_timings(a: argparse.Namespace) -> None:
    """``_timings.json`` beside the step's output (not in dashboard.json): process start, imports,
    inputs loaded, insight computed, outputs written (epoch seconds), and the process's CPU seconds."""
    out = getattr(a, "output_path", None) or getattr(a, "dashboard", None) or getattr(a, "pdf_output_path", None)
    if not out or not Path(out).is_dir():
        return
    marks = {"process_start": _process_start(), **_MARKS, "end": time.time(), "cpu_s": time.process_time()}
    (Path(out) / "_timings.json").write_text(json.dumps(marks), encoding="utf-8")


def _bool(v: str) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m openaml.rai")
    sub = p.add_subparsers(dest="step", required=True)
    c = sub.add_parser("constructor")
    for name in ("title", "task_type", "train_dataset", "test_dataset", "target_column_name", "output_path"):
        c.add_argument(f"--{name}", required=True)
    for name in ("model_input", "model_info_path", "model_info"):
        c.add_argument(f"--{name}")
    c.add_argument("--maximum_rows_for_test_dataset", type=int, default=5000)
    c.add_argument("--categorical_column_names", default="[]")
    c.add_argument("--classes", default="[]")
    e = sub.add_parser("explanation")
    e.add_argument("--comment", default="")
    ea = sub.add_parser("erroranalysis")
    ea.add_argument("--max_depth", type=int, default=3)
    ea.add_argument("--num_leaves", type=int, default=31)
    ea.add_argument("--min_child_samples", type=int, default=20)
    ea.add_argument("--filter_features", default="null")
    cf = sub.add_parser("counterfactual")
    cf.add_argument("--total_CFs", type=int, default=10)
    cf.add_argument("--method", default="random")
    for name in ("desired_class", "desired_range", "permitted_range"):
        cf.add_argument(f"--{name}")
    cf.add_argument("--features_to_vary", default="all")
    cf.add_argument("--feature_importance", type=_bool, default=True)
    cf.add_argument("--max_rows", type=int, default=50)
    ca = sub.add_parser("causal")
    ca.add_argument("--treatment_features", required=True)
    ca.add_argument("--heterogeneity_features", default="null")
    ca.add_argument("--nuisance_model", default="linear")
    ca.add_argument("--heterogeneity_model", default="linear")
    ca.add_argument("--upper_bound_on_cat_expansion", type=int, default=50)
    ca.add_argument("--skip_cat_limit_checks", type=_bool, default=False)
    ca.add_argument("--alpha", type=float, default=0.05)
    ca.add_argument("--random_state", default="None")
    fa = sub.add_parser("fairness")
    fa.add_argument("--sensitive_features", required=True)
    fa.add_argument("--mitigation", default="none")
    fa.add_argument("--constraint", default="demographic_parity")
    fa.add_argument("--registered_model_name")
    for sp in (e, ea, cf, ca, fa):
        sp.add_argument("--rai_insights_dashboard", required=True)
        sp.add_argument("--output_path", required=True)
    g = sub.add_parser("gather")
    g.add_argument("--constructor", required=True)
    g.add_argument("--insight", action="append", default=[])
    g.add_argument("--dashboard", required=True)
    g.add_argument("--ux_json")
    s = sub.add_parser("scorecard")
    s.add_argument("--rai_insights_dashboard", required=True)
    s.add_argument("--pdf_generation_config", required=True)
    s.add_argument("--pdf_output_path", required=True)
    return p


def _log_metrics(metrics: dict[str, Any]) -> None:
    """On the job's own MLflow run (the runner sets MLFLOW_RUN_ID); nothing when run by hand.

    Through MLflow's REST API (``runs/log-batch``) with httpx, which the step has imported anyway,
    rather than the mlflow client, whose import costs a step seconds; the mlflow client is the
    fallback when that request fails."""
    run_id, uri = os.environ.get("MLFLOW_RUN_ID"), os.environ.get("MLFLOW_TRACKING_URI", "")
    if not run_id:
        return
    clean = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and v == v}
    if not clean:
        return
    if uri.startswith(("http://", "https://")):
        import httpx

        now = int(time.time() * 1000)
        headers, auth = {}, None
        if os.environ.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
        elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
            auth = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
        insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true"
        verify: Any = False if insecure else (os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or True)
        if uri.startswith("http://"):
            verify = False  # no TLS to verify: and no CA bundle to load (50 ms of CPU a step)
        body = {"run_id": run_id, "metrics": [{"key": k, "value": v, "timestamp": now, "step": 0}
                                              for k, v in clean.items()]}
        try:
            r = httpx.post(f"{uri.rstrip('/')}/api/2.0/mlflow/runs/log-batch", json=body, headers=headers, auth=auth,
                           verify=verify, timeout=60)
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
    import mlflow

    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(clean)


def _fairness(a: argparse.Namespace) -> None:
    from openaml.rai._constructor import parse_json_list
    from openaml.rai._io import RAIInputError, load_dashboard, write_insight
    from openaml.rai.fairness import assess_fairness, check_sensitive_features, comparison_table, mitigate

    dash = load_dashboard(a.rai_insights_dashboard)
    cols = [str(c) for c in parse_json_list(a.sensitive_features, "sensitive_features")]
    check_sensitive_features(dash.test, cols)
    check_sensitive_features(dash.train, cols, what="train data")
    values = dash.config.get("class_values") or []
    if not dash.is_classification or len(values) != 2:
        raise RAIInputError("fairness: the dashboard must be a binary classification (task_type classification, "
                            f"two classes; this one: {dash.config['task_type']}, classes {dash.config.get('classes')})")
    if a.mitigation not in ("none", "threshold_optimizer", "exponentiated_gradient"):
        raise RAIInputError(f"input 'mitigation': {a.mitigation!r}; use none, threshold_optimizer or "
                            "exponentiated_gradient")
    if a.mitigation != "none" and dash.model.native is None:
        raise RAIInputError("input 'mitigation': the model has no scikit-learn flavor; mitigation needs one")
    report = assess_fairness(dash.y("test"), dash.predictions["y_pred"], dash.test[cols], pos_label=values[1])
    data: dict[str, Any] = {"sensitive_features": report, "mitigation": None}
    metrics = {f"fairness_{c}_{m}_difference": v for c, r in report.items() for m, v in r["difference"].items()}
    out = Path(a.output_path)
    if a.mitigation != "none":
        mitigated, comparison = mitigate(dash.model.native, dash.X("train"), dash.y("train"), dash.train[cols],
                                         dash.X("test"), dash.y("test"), dash.test[cols], method=a.mitigation,
                                         constraint=a.constraint, pos_label=values[1], neg_label=values[0])
        table = comparison_table(comparison)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "fairness_comparison.csv", index=False)
        metrics.update({f"mitigated_fairness_{c}_{m}_difference": v for c, r in comparison["after"].items()
                        for m, v in r["difference"].items()})
    # before the mitigated model's mlflow.start_run block below: leaving it unsets MLFLOW_RUN_ID
    _log_metrics(metrics)
    if a.mitigation != "none":
        uri = None
        if os.environ.get("MLFLOW_RUN_ID"):
            import mlflow

            from openaml.rai._pyfunc import MitigatedPyfunc

            with mlflow.start_run(run_id=os.environ["MLFLOW_RUN_ID"]):
                info = mlflow.pyfunc.log_model(name="mitigated_model", python_model=MitigatedPyfunc(mitigated),
                                               registered_model_name=a.registered_model_name or None)
                mlflow.log_table(data=table, artifact_file="fairness_comparison.json")
                uri = info.model_uri
        data["mitigation"] = {**comparison, "model_uri": uri, "registered_model_name": a.registered_model_name}
    write_insight(out, "fairness", data, filename="fairness")


def run(a: argparse.Namespace) -> None:
    from openaml.rai import _gather, _insights, _whatif
    from openaml.rai._io import load_dashboard, write_insight

    if a.step == "constructor":
        from openaml.rai._constructor import construct

        construct(title=a.title, task_type=a.task_type, train_dataset=a.train_dataset, test_dataset=a.test_dataset,
                  target_column_name=a.target_column_name, output_path=a.output_path, model_input=a.model_input,
                  model_info_path=a.model_info_path, model_info=a.model_info,
                  maximum_rows_for_test_dataset=a.maximum_rows_for_test_dataset,
                  categorical_column_names=a.categorical_column_names, classes=a.classes)
    elif a.step == "explanation":
        dash = load_dashboard(a.rai_insights_dashboard)
        dash.model  # noqa: B018 - loaded here, so that the timings tell loading from explaining
        _mark("loaded")
        data = _insights.explanation(dash, a.comment)
        _mark("computed")
        write_insight(a.output_path, "explanation", data, filename="explanation")
    elif a.step == "erroranalysis":
        dash = load_dashboard(a.rai_insights_dashboard)
        _mark("loaded")
        data = _insights.error_analysis(dash, max_depth=a.max_depth,
                                        num_leaves=a.num_leaves, min_child_samples=a.min_child_samples,
                                        filter_features=a.filter_features)
        _mark("computed")
        write_insight(a.output_path, "error_analysis", data, filename="error_analysis")
    elif a.step == "counterfactual":
        dash = load_dashboard(a.rai_insights_dashboard)
        dash.model  # noqa: B018 - loaded here, so that the timings tell loading from searching
        _mark("loaded")
        data = _whatif.counterfactual(dash, total_CFs=a.total_CFs,
                                      desired_class=a.desired_class, desired_range=a.desired_range,
                                      permitted_range=a.permitted_range, features_to_vary=a.features_to_vary,
                                      feature_importance=a.feature_importance, max_rows=a.max_rows, method=a.method)
        _mark("computed")
        write_insight(a.output_path, "counterfactual", data, filename="counterfactual")
        _log_metrics({"counterfactual_rows_without_cf": sum(1 for r in data["rows"] if r["error"])})
    elif a.step == "causal":
        data = _whatif.causal(load_dashboard(a.rai_insights_dashboard), treatment_features=a.treatment_features,
                              heterogeneity_features=a.heterogeneity_features, nuisance_model=a.nuisance_model,
                              heterogeneity_model=a.heterogeneity_model, alpha=a.alpha,
                              upper_bound_on_cat_expansion=a.upper_bound_on_cat_expansion,
                              skip_cat_limit_checks=a.skip_cat_limit_checks, random_state=a.random_state)
        write_insight(a.output_path, "causal", data, filename="causal")
    elif a.step == "fairness":
        _fairness(a)
    elif a.step == "gather":
        doc = _gather.gather(a.constructor, a.insight, a.dashboard, a.ux_json)
        _log_metrics(doc["metrics"]["overall"])
    elif a.step == "scorecard":
        card = _gather.scorecard(a.rai_insights_dashboard, a.pdf_generation_config, a.pdf_output_path)
        _log_metrics({"scorecard_passed": 1.0 if card["verdict"] == "pass" else 0.0})


def main(argv: list[str] | None = None) -> None:
    if os.environ.get("OPENAML_RAI_WARM_FD"):  # the runner connected this step to the warm process
        from openaml.rai._warm import run_warm

        code = run_warm(list(sys.argv[1:] if argv is None else argv))
        if code is not None:
            sys.exit(code)
    from openaml.rai._io import RAIInputError, fail

    _mark("imports")
    args = _parser().parse_args(argv)
    try:
        run(args)
    except RAIInputError as exc:
        fail(f"{args.step}: {exc}")
    _mark("written")
    _write_timings(args)


if __name__ == "__main__":
    main(sys.argv[1:])
