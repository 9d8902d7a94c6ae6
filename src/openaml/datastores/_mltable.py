"""MLTable file validation (spec 7.1): the checks Azure ML and the ``mltable`` package make, done early.

An ``mltable`` data asset is a folder holding a YAML file named ``MLTable``::

    paths:
      - file: ./titanic.csv          # or  folder: ./data   or  pattern: ./**/*.csv   or a URL
    transformations:
      - read_delimited: {delimiter: ",", encoding: utf8, header: all_files_same_headers}
      - convert_column_types:
          - {columns: [Age, Fare], column_type: float}
      - take: 100

:func:`validate_mltable_folder` checks the top-level keys, every ``paths`` entry (local paths
must exist inside the folder, because only the folder is uploaded) and every transformation with
its options, as listed by the JSON schema shipped with the ``mltable`` package. All problems are
reported at once, each naming the MLTable file, the line and the field, so a bad asset is refused
before anything is uploaded (SDK side) and again before it is registered (server side).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from openaml._yaml import LineMap, format_loc, parse_yaml_with_lines
from openaml.datastores._paths import safe_join
from openaml.errors import OpenAMLError, ValidationError

__all__ = ["KNOWN_TRANSFORMATIONS", "MLTABLE_FILE", "is_url", "validate_mltable_folder", "validate_mltable_text"]

MLTABLE_FILE = "MLTable"

# Schemes a path may use instead of a local path (kept as given; not checked here).
URL_SCHEMES = ("http", "https", "wasb", "wasbs", "abfs", "abfss", "adl", "azureml", "s3", "gs")
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")

_TOP_LEVEL = ("$schema", "type", "metadata", "paths", "traits", "transformations", "query_source")
_PATH_KINDS = ("file", "folder", "pattern")

_HEADERS = ("no_header", "from_first_file", "all_files_different_headers", "all_files_same_headers")
_DELIMITED_ENCODINGS = ("utf8", "utf-8", "utf8 bom", "iso88591", "iso-8859-1", "latin1", "latin-1", "ascii",
                        "utf16", "utf-16", "windows1252", "windows-1252")
_JSON_ENCODINGS = ("utf8", "utf-8", "iso88591", "latin1", "ascii", "utf16", "utf8bom", "windows1252")
_COLUMN_TYPES = ("boolean", "float", "string", "int", "stream_info")

Errors = list[tuple[tuple[Any, ...], str]]
Check = Callable[[Any, tuple[Any, ...], Errors], None]


def is_url(path: str) -> bool:
    """True for ``scheme://...`` strings (remote data, datastore and job URIs)."""
    return bool(_URL.match(path))


# ---------------------------------------------------------------------------- value checkers
def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _bool(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
    if not isinstance(v, bool):
        errs.append((loc, f"must be true or false (got {_show(v)})"))


def _str(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
    if not isinstance(v, str) or not v:
        errs.append((loc, f"must be a non-empty string (got {_show(v)})"))


def _int(minimum: int) -> Check:
    def check(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            errs.append((loc, f"must be an integer >= {minimum} (got {_show(v)})"))
    return check


def _number(lo: float, hi: float) -> Check:
    def check(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            errs.append((loc, f"must be a number between {lo} and {hi} (got {_show(v)})"))
    return check


def _enum(*allowed: str) -> Check:
    def check(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
        if v not in allowed:
            errs.append((loc, f"value {_show(v)} is not allowed; allowed: {', '.join(allowed)}"))
    return check


def _str_list(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        errs.append((loc, f"must be a list of strings (got {_show(v)})"))


def _int_list(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
    if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        errs.append((loc, f"must be a list of integers (got {_show(v)})"))


def _mapping(options: dict[str, Check], required: tuple[str, ...] = ()) -> Check:
    """A mapping whose keys are ``options``; unknown keys are errors naming the allowed ones."""
    def check(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
        if not isinstance(v, dict):
            errs.append((loc, f"must be a mapping with keys from: {', '.join(options)} (got {_show(v)})"))
            return
        for key in required:
            if key not in v:
                errs.append((loc, f"'{key}' is required"))
        for key, value in v.items():
            if key not in options:
                errs.append((loc + (key,), f"unknown option; allowed: {', '.join(options)}"))
            else:
                options[key](value, loc + (key,), errs)
    return check


_SELECTOR = _mapping({"pattern": _str, "ignore_case": _bool, "invert": _bool}, required=("pattern",))


def _columns(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
    """A column name, a list of names, or ``{pattern, ignore_case, invert}``."""
    if isinstance(v, str) and v:
        return
    if isinstance(v, list):
        _str_list(v, loc, errs)
        return
    if isinstance(v, dict):
        _SELECTOR(v, loc, errs)
        return
    errs.append((loc, f"must be a column name, a list of names, or {{pattern: <regex>}} (got {_show(v)})"))


def _column_type(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
    if isinstance(v, str):
        _enum(*_COLUMN_TYPES)(v, loc, errs)
        return
    forms = {
        "datetime": _mapping({"formats": _str_or_str_list, "date_constant": _str}, required=("formats",)),
        "boolean": _mapping({"true_values": _str_list, "false_values": _str_list,
                             "mismatch_as": _enum("true", "false", "error")}),
        "stream_info": _mapping({"subscription": _str, "resource_group": _str, "workspace_name": _str,
                                 "escaped": _bool}),
    }
    if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in forms:
        key = next(iter(v))
        forms[key](v[key], loc + (key,), errs)
        return
    errs.append((loc, (f"must be one of {', '.join(_COLUMN_TYPES)} or a mapping with one key from "
                      f"{', '.join(forms)} (got {_show(v)})")))


def _str_or_str_list(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
    if isinstance(v, str) and v:
        return
    _str_list(v, loc, errs)


def _convert_column_types(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
    if not isinstance(v, list) or not v:
        errs.append((loc, "must be a non-empty list of {columns: ..., column_type: ...} mappings"))
        return
    item = _mapping({"columns": _columns, "column_type": _column_type}, required=("columns", "column_type"))
    for i, x in enumerate(v):
        item(x, loc + (i,), errs)


def _infer_column_types(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
    if isinstance(v, bool):
        return
    override = _mapping({"columns": _columns, "column_type": _column_type}, required=("columns", "column_type"))

    def overrides(x: Any, at: tuple[Any, ...], e: Errors) -> None:
        if not isinstance(x, list):
            e.append((at, "must be a list of {columns, column_type} mappings"))
            return
        for i, item in enumerate(x):
            override(item, at + (i,), e)

    _mapping({"sample_size": _int(1), "column_type_overrides": overrides})(v, loc, errs)


def _partition_format(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
    if not isinstance(v, str) or not re.search(r"\{[^{}]+\}", v):
        errs.append((loc, (f"must be a format such as '{{Store}}/{{Brand}}/{{file_name}}.csv' naming at least "
                          f"one {{column}} (got {_show(v)})")))


def _extract_partitions(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
    if isinstance(v, str):
        _partition_format(v, loc, errs)
    else:
        _mapping({"partition_format": _partition_format}, required=("partition_format",))(v, loc, errs)


_ESCAPES = {"t": "\\t", "n": "\\n", "r": "\\r"}


def _delimiter(v: Any, loc: tuple[Any, ...], errs: Errors) -> None:
    """One character: the MLTable reader splits on exactly one (its schema allows two, but a
    two-character delimiter such as ``'\\t'`` written single-quoted, ``/t`` or ``||`` is not split
    on and the file reads as one column)."""
    if isinstance(v, str) and len(v) == 1:
        return
    if isinstance(v, str) and len(v) == 2 and v[0] in "\\/" and v[1] in _ESCAPES:
        errs.append((loc, f"'{v}' is two characters, not a tab or newline: YAML keeps backslashes in "
                          f"single quotes and plain text; write delimiter: \"{_ESCAPES[v[1]]}\" (double-quoted)"))
        return
    errs.append((loc, f"must be one character, the MLTable reader splits on exactly one (got {_show(v)}); "
                      'e.g. delimiter: "," or delimiter: "\\t" (double-quoted) for a tab'))


# transformations that may also be written as a bare string (their defaults)
_BARE = ("read_delimited", "read_parquet", "read_json_lines", "read_delta_lake", "extract_columns_from_partition_format")

_TRANSFORMATIONS: dict[str, Check] = {
    "read_delimited": _mapping({
        "delimiter": _delimiter,
        "header": _enum(*_HEADERS),
        "support_multi_line": _bool,
        "empty_as_string": _bool,
        "encoding": _enum(*_DELIMITED_ENCODINGS),
        "include_path_column": _bool,
        "infer_column_types": _infer_column_types,
        "path_column": _str,
        "partition_size": _int(1),
    }),
    "read_json_lines": _mapping({
        "invalid_lines": _enum("error", "drop"),
        "encoding": _enum(*_JSON_ENCODINGS),
        "include_path_column": _bool,
        "path_column": _str,
        "partition_size": _int(1),
    }),
    "read_parquet": _mapping({"include_path_column": _bool, "path_column": _str}),
    "read_delta_lake": _mapping({"version_as_of": _int(0), "timestamp_as_of": _str, "include_path_column": _bool}),
    "convert_column_types": _convert_column_types,
    "drop_columns": _columns,
    "keep_columns": _columns,
    "take": _int(0),
    "skip": _int(0),
    "extract_columns_from_partition_format": _extract_partitions,
    "filter": _str,
    "take_random_sample": _mapping({"probability": _number(0.0, 1.0), "seed": _int(0)}, required=("probability",)),
    "sample": _mapping({"sampler": _enum("randomPercent", "random_percent"),
                        "sampler_arguments": _mapping({"seed": _int(0), "probability": _number(0.0, 1.0),
                                                       "probability_lower_bound": _number(0.0, 1.0)})}),
    "select_partitions": _int_list,
}

KNOWN_TRANSFORMATIONS: tuple[str, ...] = tuple(_TRANSFORMATIONS)


def _check_transformations(v: Any, errs: Errors) -> None:
    loc: tuple[Any, ...] = ("transformations",)
    if not isinstance(v, list):
        errs.append((loc, f"must be a list of transformations (got {_show(v)})"))
        return
    known = ", ".join(KNOWN_TRANSFORMATIONS)
    for i, step in enumerate(v):
        at = loc + (i,)
        if isinstance(step, str):
            if step not in _BARE:
                hint = f"unknown transformation; known: {known}" if step not in _TRANSFORMATIONS else \
                    f"'{step}' needs a value, e.g. '- {step}: ...'"
                errs.append((at, f"{hint} (got {_show(step)})"))
            continue
        if not isinstance(step, dict) or len(step) != 1:
            errs.append((at, f"each transformation is a mapping with one key, e.g. '- take: 10' (got {_show(step)})"))
            continue
        name, options = next(iter(step.items()))
        if name not in _TRANSFORMATIONS:
            errs.append((at + (name,), f"unknown transformation; known: {known}"))
            continue
        if options is None:
            fix = f"write '- {name}' without the colon to use its defaults" if name in _BARE else "give it a value"
            errs.append((at + (name,), f"has no value; {fix}"))
            continue
        _TRANSFORMATIONS[name](options, at + (name,), errs)


# ---------------------------------------------------------------------------- paths
def _check_paths(v: Any, folder: Path | None, errs: Errors) -> None:
    loc: tuple[Any, ...] = ("paths",)
    if not isinstance(v, list) or not v:
        errs.append((loc, "must be a non-empty list of {file: ...}, {folder: ...} or {pattern: ...} entries"))
        return
    for i, entry in enumerate(v):
        at = loc + (i,)
        if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in _PATH_KINDS:
            errs.append((at, f"must be a mapping with exactly one of: file, folder, pattern (got {_show(entry)})"))
            continue
        kind, value = next(iter(entry.items()))
        at = at + (kind,)
        if not isinstance(value, str) or not value.strip():
            errs.append((at, f"must be a non-empty path string (got {_show(value)})"))
            continue
        m = _URL.match(value)
        if m:
            if m.group("scheme").lower() not in URL_SCHEMES:
                errs.append((at, (f"URL scheme {m.group('scheme')!r} is not supported; use a path relative to the "
                                 f"MLTable folder or one of: {', '.join(s + '://' for s in URL_SCHEMES)}")))
            continue
        if folder is None:
            continue
        if kind == "pattern":
            _check_pattern(value, folder, at, errs)
            continue
        try:
            target = safe_join(folder, value, what=f"{kind} path")
        except OpenAMLError as exc:
            errs.append((at, (f"{exc.message}; only the MLTable's folder is uploaded, so put the data inside it "
                             "or use a URL / azureml://datastores/... URI")))
            continue
        if not target.exists():
            errs.append((at, f"{value!r} does not exist (looked for {target})"))
        elif kind == "file" and not target.is_file():
            errs.append((at, f"{value!r} is a folder; use 'folder:' for folders"))
        elif kind == "folder" and not target.is_dir():
            errs.append((at, f"{value!r} is a file; use 'file:' for files"))


def _check_pattern(value: str, folder: Path, at: tuple[Any, ...], errs: Errors) -> None:
    rel = value.replace("\\", "/")
    parts = [p for p in PurePosixPath(rel).parts if p not in ("", ".")]
    if rel.startswith("/") or ".." in parts:
        errs.append((at, f"pattern {value!r} must stay inside the MLTable folder (no leading '/', no '..')"))
        return
    if not parts:
        errs.append((at, f"pattern {value!r} matches nothing; use e.g. './**/*.csv'"))
        return
    root = folder.resolve()
    try:
        hits = [p for p in folder.glob("/".join(parts))
                if p.is_file() and (root == p.resolve() or root in p.resolve().parents)]
    except (ValueError, OSError) as exc:
        errs.append((at, f"pattern {value!r} is not a valid glob: {exc}"))
        return
    if not hits:
        errs.append((at, f"pattern {value!r} matches no file under the MLTable folder"))


# ---------------------------------------------------------------------------- entry points
def validate_mltable_text(text: str, *, source: str, folder: Path | None = None) -> dict[str, Any]:
    """Validate the text of an MLTable file; with ``folder``, also check that local paths exist there.

    Returns:
        The parsed MLTable mapping.

    Raises:
        ValidationError: every problem found, each as ``<source>, line N: field 'a.b': problem``;
            ``details`` holds the first one (file, line, field) and ``errors`` (all of them).
    """
    data, lines = parse_yaml_with_lines(text, source=source)
    errs: Errors = []
    for key in data:
        if key not in _TOP_LEVEL:
            errs.append(((key,), f"unknown field; allowed: {', '.join(_TOP_LEVEL)}"))
    if "type" in data and data["type"] != "mltable":
        errs.append((("type",), f"must be 'mltable' (got {_show(data['type'])})"))
    if "query_source" in data:
        errs.append((("query_source",), ("database query sources need an external connection, which this "
                                        "installation cannot reach; export the data to files and use 'paths'")))
    elif "paths" not in data:
        errs.append(((), "'paths' is required: a list of {file: ...}, {folder: ...} or {pattern: ...}"))
    else:
        _check_paths(data["paths"], folder, errs)
    if "metadata" in data and not isinstance(data["metadata"], dict):
        errs.append((("metadata",), "must be a mapping"))
    if "traits" in data:
        _mapping({"index_columns": _str_list, "timestamp_column": _str})(data["traits"], ("traits",), errs)
    if "transformations" in data:
        _check_transformations(data["transformations"], errs)
    if errs:
        raise _error(errs, source, lines)
    return data


def validate_mltable_folder(folder: str | Path, *, label: str | None = None) -> dict[str, Any]:
    """Validate the ``MLTable`` file of an mltable data asset's folder.

    Args:
        folder: the local folder that must hold a file named ``MLTable``.
        label: how to name the folder in messages (e.g. its datastore URI); the path by default.

    Returns:
        The parsed MLTable mapping.

    Raises:
        ValidationError: ``folder`` is not a folder, has no ``MLTable`` file, or the file is invalid
            (see :func:`validate_mltable_text`).
    """
    folder = Path(folder)
    shown = label or str(folder)
    if not folder.is_dir():
        raise ValidationError(f"an mltable data asset's path must be a folder holding an MLTable file; "
                              f"{shown} is not a folder", details={"value": shown})
    mlfile = folder / MLTABLE_FILE
    if not mlfile.is_file():
        near = [p.name for p in folder.iterdir() if p.name.lower() in ("mltable", "mltable.yml", "mltable.yaml")]
        hint = f" (found {near[0]!r}: the file must be named exactly 'MLTable', no extension)" if near else ""
        raise ValidationError(f"{shown} has no MLTable file{hint}; an mltable data asset is a folder holding a "
                              "YAML file named 'MLTable' with 'paths' and 'transformations', or use type "
                              "uri_folder for a plain folder", details={"value": shown})
    source = f"{shown.rstrip('/')}/{MLTABLE_FILE}"
    try:
        text = mlfile.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{source}: not a UTF-8 text file", details={"file": source}) from None
    return validate_mltable_text(text, source=source, folder=folder)


def _error(errs: Errors, source: str, lines: LineMap) -> ValidationError:
    listed = []
    for loc, msg in errs:
        probe = loc
        while probe and probe not in lines:
            probe = probe[:-1]
        listed.append({"file": source, "line": lines.get(probe), "field": format_loc(loc), "message": msg})
    listed.sort(key=lambda e: e["line"] or 0)  # in file order, as a reader scans it
    parts = []
    for e in listed:
        where = source + (f", line {e['line']}" if e["line"] else "")
        parts.append(f"{where}: field '{e['field']}': {e['message']}")
    return ValidationError("; ".join(parts), details={**listed[0], "errors": listed})
