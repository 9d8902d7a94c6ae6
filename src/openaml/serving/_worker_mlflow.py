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

Micro-batching: for a model whose signature names its columns, requests in ``dataframe_split`` (an
``index`` is dropped) or ``dataframe_records`` form with the same columns have their rows merged and parsed by MLflow
once (MLflow casts every column to the signature's type, so a row parses the same alone or merged),
predicted once, and the result is split back by row counts; a batch that fails is retried request by
request. Other requests are parsed and predicted alone. Reading the body happens on the worker's
event loop; MLflow's parsing and ``predict`` in a scoring thread.
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
    """One request, read but not yet parsed by MLflow: the JSON object (or CSV text), params, the answer's
    style, and the batch key under which its rows may be merged with other requests' before MLflow parses
    them once for all (None: parsed and predicted alone)."""

    __slots__ = ("csv", "key", "n", "obj", "params", "style")

    def __init__(self, obj: Any, params: Any, style: str, csv: str | None = None) -> None:
        self.obj = obj  # {one of _FORMATS: value} (and "params"), or None for CSV
        self.csv = csv
        self.params = params
        self.style = style  # "predictions" (MLflow's keys, CSV) or "list" (Azure's input_data)
        self.key: tuple[Any, ...] | None = None
        self.n = 1  # rows, for max_batch_size

    def rows(self) -> int:
        return self.n


def _batch_key(p: Parsed) -> tuple[tuple[Any, ...] | None, int]:
    """Requests whose rows MLflow would parse the same alone or merged: a ``dataframe_split`` (its ``index``
    is not carried into the merged frame: predictions are answered as records, without it), or
    ``dataframe_records`` whose records all have the same fields; and no params."""
    if p.obj is None or p.params is not None or len(p.obj) != 1:
        return None, 1
    fmt, value = next(iter(p.obj.items()))
    if fmt == "dataframe_split" and isinstance(value, dict) and set(value) in ({"columns", "data"},
                                                                               {"columns", "index", "data"}):
        cols, rows = value["columns"], value["data"]
        if isinstance(cols, list) and all(isinstance(c, str) for c in cols) and len(set(cols)) == len(cols) \
                and isinstance(rows, list) and rows and all(isinstance(r, list) and len(r) == len(cols) for r in rows):
            return ("split", tuple(cols)), len(rows)
    if fmt == "dataframe_records" and isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        fields = tuple(value[0])
        if all(tuple(r) == fields for r in value):
            return ("records", fields), len(value)
    return None, 1


class MLflowScorer:
    """An MLflow model with no scoring script (Azure ML's no-code deployment)."""

    def __init__(self, path: str) -> None:
        import mlflow.pyfunc
        from mlflow.pyfunc import scoring_server as ss

        self.ss = ss
        self.model = mlflow.pyfunc.load_model(path)
        self.schema = self.model.metadata.get_input_schema()
        self.takes_params = "params" in inspect.signature(self.model.predict).parameters
        self._jsonable: Any = None
        try:
            from mlflow.utils.proto_json_utils import _get_jsonable_obj

            self._jsonable = _get_jsonable_obj
        except ImportError:  # pragma: no cover - every MLflow 1.x-3.x has it
            pass
        self.columns: list[tuple[str, str]] = []
        if self.schema is not None and self.schema.has_input_names() and not self.schema.is_tensor_spec():
            for col in self.schema.inputs:
                self.columns.append((col.name, str(getattr(col.type, "name", col.type))))

    def init(self) -> None:
        return None

    # -- reading (on the event loop: cheap) and parsing (in a scoring thread: MLflow's code)
    def read(self, body: bytes, content_type: str | None) -> Parsed:
        """Decode one request body and work out its batch key; MLflow parses it later (:meth:`predict`).

        Raises:
            HTTPError: 400 for a body that is not JSON (or UTF-8 CSV), 415 for a content type other than
                JSON or CSV.
        """
        mime = (content_type or "application/json").split(";")[0].strip().lower()
        if mime == "text/csv":
            try:
                return Parsed(None, None, "predictions", csv=body.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise HTTPError(400, f"the CSV body is not valid UTF-8: {exc}") from None
        if mime not in ("application/json", "", "*/*"):
            raise HTTPError(415, f"content type {content_type!r} is not supported; send application/json "
                                 "or text/csv (MLflow's scoring formats)")
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
        p = Parsed(obj, params, style)
        if self.columns:  # a column signature: MLflow casts every column, so merged rows parse as alone
            p.key, p.n = _batch_key(p)
        return p

    def _parse(self, p: Parsed) -> tuple[Any, Any]:
        """MLflow's parsing of one request: ``(model input, params)``."""
        try:
            if p.csv is not None:
                try:
                    return self.ss.parse_csv_input(io.StringIO(p.csv), schema=self.schema), None
                except TypeError:  # MLflow before 2.x took no schema here
                    return self.ss.parse_csv_input(io.StringIO(p.csv)), None
            obj = p.obj
            present = [k for k in obj if k in _FORMATS]
            if len(present) != 1 and hasattr(self.ss, "_parse_json_data"):
                # not one of the classic keys: MLflow's own handling (unified LLM input, or its error)
                parsed = self.ss._parse_json_data(json.dumps(obj), self.model.metadata, self.schema)
                return parsed.data, parsed.params
            if len(present) != 1:
                raise HTTPError(400, f"the request must have exactly one of input_data, {', '.join(_FORMATS)}; "
                                     f"got keys {sorted(obj)}")
            data = {present[0]: obj[present[0]]}
            if hasattr(self.ss, "infer_and_parse_data"):
                return self.ss.infer_and_parse_data(data, self.schema), p.params
            # MLflow 2.0-2.8
            legacy: Any = self.ss  # the MLflow 2.0-2.8 scoring server module (this name is gone since)
            return legacy.infer_and_parse_json_input(json.dumps(data), self.schema), p.params
        except HTTPError:
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow's parse errors are the caller's input
            raise HTTPError(400, _message(exc)) from None

    # -- prediction
    def predict(self, items: list[Parsed]) -> list[Any]:
        """Parse and predict requests of one batch key (or one request); the predictions per request.

        Several requests are merged before parsing (one MLflow parse, one ``predict``) and the result
        is split back by row counts. Raises what parsing (HTTPError 400) or ``predict`` raises; the
        worker then retries the requests one by one so that a bad one fails alone.
        """
        if len(items) == 1:
            data, params = self._parse(items[0])
            return [self._predict(data, params)]
        kind, fields = items[0].key  # type: ignore[misc]
        if kind == "split":
            merged = Parsed({"dataframe_split": {"columns": list(fields), "data": [
                r for p in items for r in p.obj["dataframe_split"]["data"]]}}, None, "predictions")
        else:
            merged = Parsed({"dataframe_records": [r for p in items for r in p.obj["dataframe_records"]]}, None,
                            "predictions")
        data, _ = self._parse(merged)
        out = self._predict(data, None)
        parts, start = [], 0
        for p in items:
            parts.append(_slice(out, start, start + p.n))
            start += p.n
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
