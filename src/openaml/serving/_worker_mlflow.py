"""MLflow no-code scoring in a deployment worker, through MLflow's own scoring code.

Loaded by ``_worker.py`` in the deployment's environment, which may carry any MLflow 2.x or 3.x:
everything MLflow is imported here, inside the worker, and looked up defensively. Requests are
parsed by ``mlflow.pyfunc.scoring_server`` (``infer_and_parse_data`` for ``dataframe_split``,
``dataframe_records``, ``instances`` and ``inputs``; ``parse_csv_input`` for ``text/csv``) with the
model's input schema, and predicted through ``PyFuncModel.predict``, which enforces the signature:
int32 columns take JSON ints, datetime columns ISO strings, optional columns nulls, an unnamed 2-D
array takes the signature's column names, exactly as ``mlflow models serve`` does. Errors keep
MLflow's message (it names the column and the types) and answer 400.

Azure ML's own key, ``input_data`` (a split ``{columns, index, data}`` dict, a list of records, or
an array), is mapped onto MLflow's formats first; its answer is the bare prediction list, where
MLflow's keys answer ``{"predictions": ...}``.

Micro-batching: requests whose parsed frames have the same columns and dtypes are concatenated into
one frame, predicted once, and the result is split back by row counts.
"""

from __future__ import annotations

import inspect
import io
import json
from typing import Any

from _worker_http import HTTPError

__all__ = ["MLflowScorer", "Parsed"]

_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class Parsed:
    """One parsed request: MLflow's input (a DataFrame, array or dict), params, response style."""

    __slots__ = ("data", "params", "style")

    def __init__(self, data: Any, params: Any, style: str) -> None:
        self.data = data
        self.params = params
        self.style = style  # "predictions" (MLflow's keys, CSV) or "list" (Azure's input_data)

    def batch_key(self) -> tuple[Any, ...] | None:
        """Requests with equal keys may share one ``predict``; None when this one must go alone."""
        if self.params or not hasattr(self.data, "columns") or not hasattr(self.data, "dtypes"):
            return None
        cols = tuple(self.data.columns)
        if len(set(cols)) != len(cols):
            return None
        return tuple((c, str(t)) for c, t in zip(cols, self.data.dtypes, strict=True))

    def rows(self) -> int:
        return len(self.data) if hasattr(self.data, "columns") else 1


class MLflowScorer:
    """An MLflow model with no scoring script (Azure ML's no-code deployment)."""

    def __init__(self, path: str) -> None:
        import mlflow.pyfunc
        from mlflow.pyfunc import scoring_server as ss

        self.ss = ss
        self.model = mlflow.pyfunc.load_model(path)
        self.schema = self.model.metadata.get_input_schema()
        self.takes_params = "params" in inspect.signature(self.model.predict).parameters
        try:
            from mlflow.utils.proto_json_utils import _get_jsonable_obj
        except ImportError:  # pragma: no cover - every MLflow 1.x-3.x has it
            _get_jsonable_obj = None
        self._jsonable = _get_jsonable_obj
        self.columns: list[tuple[str, str]] = []
        if self.schema is not None and self.schema.has_input_names() and not self.schema.is_tensor_spec():
            for col in self.schema.inputs:
                self.columns.append((col.name, str(getattr(col.type, "name", col.type))))

    def init(self) -> None:
        return None

    # -- parsing
    def parse(self, body: bytes, content_type: str | None) -> Parsed:
        """MLflow's parsing of one request body.

        Raises:
            HTTPError: 400 for a body MLflow cannot parse (its message), 415 for a content type other
                than JSON or CSV.
        """
        mime = (content_type or "application/json").split(";")[0].strip().lower()
        try:
            if mime == "text/csv":
                return Parsed(self._csv(body), None, "predictions")
            if mime not in ("application/json", "", "*/*"):
                raise HTTPError(415, f"content type {content_type!r} is not supported; send application/json "
                                     "or text/csv (MLflow's scoring formats)")
            return self._json(body)
        except HTTPError:
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow's parse errors are the caller's input
            raise HTTPError(400, _message(exc)) from None

    def _csv(self, body: bytes) -> Any:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HTTPError(400, f"the CSV body is not valid UTF-8: {exc}") from None
        try:
            return self.ss.parse_csv_input(io.StringIO(text), schema=self.schema)
        except TypeError:  # MLflow before 2.x took no schema here
            return self.ss.parse_csv_input(io.StringIO(text))

    def _json(self, body: bytes) -> Parsed:
        try:
            obj = json.loads(body)
        except ValueError as exc:
            raise HTTPError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise HTTPError(400, "the request body must be a JSON object with one of the keys input_data, "
                                 f"{', '.join(_FORMATS)}; got {type(obj).__name__}")
        params = obj.get("params")
        style = "predictions"
        if "input_data" in obj:
            others = [k for k in obj if k in _FORMATS]
            if others:
                raise HTTPError(400, f"the request has both input_data and {others}; send exactly one of "
                                     f"input_data, {', '.join(_FORMATS)}")
            obj = {**_from_input_data(obj["input_data"]), **({"params": params} if params is not None else {})}
            style = "list"
        present = [k for k in obj if k in _FORMATS]
        if len(present) != 1 and hasattr(self.ss, "_parse_json_data"):
            # not one of the classic keys: MLflow's own handling (unified LLM input, or its error)
            parsed = self.ss._parse_json_data(json.dumps(obj), self.model.metadata, self.schema)
            return Parsed(parsed.data, parsed.params, "predictions")
        if len(present) != 1:
            raise HTTPError(400, f"the request must have exactly one of input_data, {', '.join(_FORMATS)}; "
                                 f"got keys {sorted(obj)}")
        data = {present[0]: obj[present[0]]}
        if hasattr(self.ss, "infer_and_parse_data"):
            return Parsed(self.ss.infer_and_parse_data(data, self.schema), params, style)
        # MLflow 2.0-2.8
        return Parsed(self.ss.infer_and_parse_json_input(json.dumps(data), self.schema), params, style)

    # -- prediction
    def predict(self, items: list[Parsed]) -> list[Any]:
        """One ``predict`` over requests of one :meth:`Parsed.batch_key` (or one request); results per request.

        Raises whatever ``predict`` raises (the caller maps it, see :func:`status_of`).
        """
        if len(items) == 1:
            return [self._predict(items[0].data, items[0].params)]
        import pandas as pd

        frame = pd.concat([p.data for p in items], ignore_index=True)
        out = self._predict(frame, None)
        parts, start = [], 0
        for p in items:
            n = p.rows()
            parts.append(_slice(out, start, start + n))
            start += n
        return parts

    def _predict(self, data: Any, params: Any) -> Any:
        if self.takes_params:
            return self.model.predict(data, params=params)
        return self.model.predict(data)

    def answer(self, parsed: Parsed, prediction: Any) -> Any:
        """The JSON-ready answer: ``{"predictions": ...}`` for MLflow's keys, the bare list for input_data."""
        out = self._jsonable(prediction, pandas_orient="records") if self._jsonable else _plain(prediction)
        return out if parsed.style == "list" else {"predictions": out}

    def swagger_definitions(self) -> dict[str, Any] | None:
        if not self.columns:
            return None
        kinds = {"double": "number", "float": "number", "long": "integer", "integer": "integer", "boolean": "boolean"}
        return {"Input": {"type": "object", "properties": {n: {"type": kinds.get(t, "string")}
                                                            for n, t in self.columns}}}


def status_of(exc: BaseException) -> int:
    """400 for MLflow's input and schema errors (as ``mlflow models serve`` answers them), else 500."""
    if isinstance(exc, HTTPError):
        return exc.status
    code = str(getattr(exc, "error_code", ""))
    if type(exc).__name__ in ("MlflowException", "MlflowInvalidInputException") and code in (
            "INVALID_PARAMETER_VALUE", "BAD_REQUEST", ""):
        return 400
    return 500


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)


def _from_input_data(value: Any) -> dict[str, Any]:
    """Azure ML's ``input_data`` as one of MLflow's keys."""
    if isinstance(value, dict) and "data" in value:
        rows = value.get("data")
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            return {"dataframe_records": rows}
        return {"dataframe_split": {k: value[k] for k in ("columns", "index", "data") if k in value}}
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        return {"dataframe_records": value}
    return {"inputs": value}


def _slice(out: Any, a: int, b: int) -> Any:
    if hasattr(out, "iloc"):
        return out.iloc[a:b]
    if isinstance(out, dict):
        return {k: _slice(v, a, b) for k, v in out.items()}
    return out[a:b]


def _plain(out: Any) -> Any:
    if hasattr(out, "columns") and hasattr(out, "to_dict"):
        return out.to_dict(orient="records")
    if hasattr(out, "tolist"):
        return out.tolist()
    return out
