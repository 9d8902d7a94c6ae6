"""The Explanations view of a job (``/jobs/<name>/explanations``): explanations a training job logged.

Sources, found in the job's run artifacts (down to :data:`DEPTH` folders):

- MLflow's ``mlflow.shap.log_explanation(predict_fn, X)``: a folder (``model_explanations_shap/`` by
  default) with ``shap_values.npy`` (n_samples x n_features, or with a class axis), ``base_values.npy``;
  ``feature_names.json`` and ``features.json`` when logged by ``openaml.tracking.log_explanation``
  (else features are named ``feature 0``...). Global importance is the mean |SHAP value| per feature;
  a row's local view its SHAP values.
- AutoML's ``enable_model_explainability`` output: a trial's ``outputs/explanation/global_importance.json``
  (``[{"feature", "importance"}]``, permutation importance) and, on the AutoML job, the best trial's
  ``feature_importance``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from openaml.errors import NotFoundError, OpenAMLError
from openaml.server.studio._common import not_found, render, services
from openaml.server.studio._rai_charts import bars

__all__ = ["router", "find_explanations", "shap_view", "has_explanations", "job_explained"]

router = APIRouter(include_in_schema=False)
DEPTH = 4
MAX_ENTRIES = 5000  # files looked at when searching a run's artifacts
TOP = 30


def find_explanations(root: Path) -> dict[str, list[Path]]:
    """``{"shap": [folders holding shap_values.npy], "automl": [global_importance.json files]}`` under
    ``root`` (breadth first, :data:`DEPTH` levels, :data:`MAX_ENTRIES` entries at most)."""
    found: dict[str, list[Path]] = {"shap": [], "automl": []}
    if not root.is_dir():
        return found
    level, seen = [root], 0
    for _ in range(DEPTH):
        nxt = []
        for folder in level:
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for p in entries:
                seen += 1
                if seen > MAX_ENTRIES:
                    return found
                if p.is_dir():
                    nxt.append(p)
                elif p.name == "shap_values.npy":
                    found["shap"].append(folder)
                elif p.name == "global_importance.json" and folder.name == "explanation":
                    found["automl"].append(p)
        level = nxt
    return found


def has_explanations(root: Path, rec: dict[str, Any]) -> bool:
    """Whether the job's page should offer the Explanations view."""
    if rec.get("feature_importance"):
        return True
    found = find_explanations(root)
    return bool(found["shap"] or found["automl"])


def job_explained(jobs_svc: Any, name: str, rec: dict[str, Any]) -> bool:
    """Whether job ``name``'s page offers the Explanations tab (its record, its run artifacts)."""
    try:
        return has_explanations(jobs_svc.output_dir(name, "artifacts"), rec)
    except (OpenAMLError, KeyError):
        return bool(rec.get("feature_importance"))


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def shap_view(folder: Path, row: int = 0, cls: int | None = None) -> dict[str, Any]:
    """Global and local importance from one ``mlflow.shap`` explanation folder.

    ``shap_values.npy`` of shape (n, f) (one output), (n, f, k) (SHAP >= 0.45, k outputs) or (k, n, f)
    (older SHAP's list of arrays); ``cls`` picks the output (default the last: the positive class of a
    binary classifier). Raises ValueError for a file that is not such an array."""
    values = np.load(folder / "shap_values.npy", allow_pickle=False)
    base = np.load(folder / "base_values.npy", allow_pickle=False) if (folder / "base_values.npy").is_file() else None
    names = _json(folder / "feature_names.json")
    rows = _json(folder / "features.json")
    outputs, k = 1, 0
    if values.ndim == 3:
        # (n, f, k) from SHAP >= 0.45; (k, n, f) from older SHAP's list: the class axis is the one of the
        # size of base_values (KernelExplainer.expected_value has one value per output)
        n_out = int(base.size) if base is not None and base.ndim == 1 and base.size > 1 else None
        named = isinstance(names, list) and len(names) > 0
        last = (n_out == values.shape[2]) if n_out else (values.shape[1] == len(names) if named
                                                          else values.shape[2] <= values.shape[0])
        outputs = values.shape[2] if last else values.shape[0]
        k = outputs - 1 if cls is None else max(0, min(cls, outputs - 1))
        values = values[:, :, k] if last else values[k]
    if values.ndim != 2:
        raise ValueError(f"{folder.name}/shap_values.npy has shape {values.shape}; expected (samples, features)")
    n, f = values.shape
    if not (isinstance(names, list) and len(names) == f):
        names = [f"feature {i}" for i in range(f)]
    names = [str(x) for x in names]
    mean_abs = np.nan_to_num(np.abs(values).mean(axis=0)) if n else np.zeros(f)
    order = sorted(range(f), key=lambda i: -mean_abs[i])
    row = max(0, min(row, n - 1)) if n else 0
    local = [(names[i], float(np.nan_to_num(values[row, i]))) for i in range(f)] if n else []
    local.sort(key=lambda kv: -abs(kv[1]))
    row_values = rows[row] if isinstance(rows, list) and row < len(rows) and isinstance(rows[row], dict) else {}
    base_value = _base(base, n, row, k)
    global_items = [(names[i], float(mean_abs[i])) for i in order]
    return {"n": n, "features": f, "outputs": outputs, "output": k, "row": row, "names": names,
            "global": bars(global_items[:TOP]), "global_all": global_items, "local": bars(local[:TOP]),
            "local_all": local, "row_values": row_values, "base_value": base_value,
            "plot": (folder / "summary_bar_plot.png").is_file()}


def _base(base: Any, n: int, row: int, k: int) -> float | None:
    """The expected value of output ``k`` (per row when base_values has one per row)."""
    if base is None or not base.size:
        return None
    b = np.asarray(base, dtype=float)
    if b.ndim == 0:
        return float(b)
    if b.ndim == 1:
        return float(b[row] if b.shape[0] == n and n > 1 and k == 0 else b[min(k, b.shape[0] - 1)])
    b = b.reshape(b.shape[0], -1)
    return float(b[row if b.shape[0] == n else 0, min(k, b.shape[1] - 1)])


def _automl_items(data: Any) -> list[tuple[str, float]]:
    items = []
    for d in data if isinstance(data, list) else []:
        if isinstance(d, dict) and "feature" in d:
            try:
                items.append((str(d["feature"]), float(d.get("importance") or 0.0)))
            except (TypeError, ValueError):
                continue
    return sorted(items, key=lambda kv: -abs(kv[1]))


@router.get("/jobs/{name}/explanations", response_class=HTMLResponse)
def job_explanations(request: Request, name: str, row: int = 0, output: int | None = None) -> HTMLResponse:
    """The explanations a job logged: SHAP (MLflow) global and local importance, AutoML's importance."""
    svc = services(request)["jobs"]
    try:
        rec: dict[str, Any] = dict(svc.get(name))
    except NotFoundError:
        return not_found(request, f"job {name!r}", "/jobs", "all jobs")
    try:
        root = svc.output_dir(name, "artifacts")
    except (OpenAMLError, KeyError):
        root = Path("/nonexistent")
    found = find_explanations(root)
    shap_items = []
    for folder in found["shap"]:
        rel = folder.relative_to(root).as_posix()
        try:
            shap_items.append({"path": rel, **shap_view(folder, row, output)})
        except (ValueError, OSError) as e:
            shap_items.append({"path": rel, "error": f"{type(e).__name__}: {e}"})
    automl = []
    if rec.get("feature_importance"):
        items = _automl_items(rec["feature_importance"])
        automl.append({"source": f"best trial {rec.get('best_child_run_id') or ''}".strip(),
                       "trial": rec.get("best_child_run_id"), "chart": bars(items[:TOP]), "ranked": items})
    for path in found["automl"]:
        items = _automl_items(_json(path))
        automl.append({"source": path.relative_to(root).as_posix(), "trial": None, "chart": bars(items[:TOP]),
                       "ranked": items})
    return render(request, "rai_explanations.html", job=rec, shap=shap_items, automl=automl, row=row)
