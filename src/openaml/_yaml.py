"""YAML loading that remembers where every value came from.

``load_yaml_with_lines(path)`` returns the parsed mapping plus a map from field paths
(tuples such as ``("inputs", "data", "path")``) to 1-based line numbers, so that validation
errors can name the file, the line and the field, as ``az ml`` does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from openaml.errors import ValidationError

__all__ = ["load_yaml_with_lines", "LineMap", "dump_yaml", "apply_set_overrides", "format_loc"]

LineMap = dict[tuple[Any, ...], int]


class _Loader(yaml.SafeLoader):
    pass


def _construct(node: yaml.Node, path: tuple[Any, ...], lines: LineMap, loader: _Loader) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                raise ValidationError(
                    f"duplicate key {key!r} at line {key_node.start_mark.line + 1}",
                    details={"field": ".".join(map(str, path + (key,)))},
                )
            out[key] = _construct(value_node, path + (key,), lines, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, path + (i,), lines, loader) for i, v in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_yaml_with_lines(path: str | os.PathLike[str]) -> tuple[dict[str, Any], LineMap]:
    """Parse a YAML mapping file.

    Returns:
        (data, lines): the mapping and a map from field path tuples to 1-based line numbers.

    Raises:
        ValidationError: the file is missing, is not valid YAML (line and column given), or its
            top level is not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise ValidationError(f"{p}: file not found", details={"file": str(p)})
    text = p.read_text(encoding="utf-8")
    return parse_yaml_with_lines(text, source=str(p))


def parse_yaml_with_lines(text: str, source: str = "<string>") -> tuple[dict[str, Any], LineMap]:
    loader = _Loader(text)
    lines: LineMap = {}
    try:
        node = loader.get_single_node()
        if node is None:
            raise ValidationError(f"{source}: the file is empty; expected a YAML mapping",
                                  details={"file": source})
        data = _construct(node, (), lines, loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationError(
            f"{source}: invalid YAML at {where}: {problem}",
            details={"file": source, "line": mark.line + 1 if mark else None},
        ) from None
    except ValidationError as exc:
        if not exc.message.startswith(source):
            exc.message = f"{source}: {exc.message}"
            exc.args = (exc.message,)
        raise
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ValidationError(f"{source}: the top level must be a mapping, got {type(data).__name__}",
                              details={"file": source})
    return data, lines


def format_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(x) for x in loc) if loc else "<root>"


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _coerce_scalar(text: str) -> Any:
    """``--set`` values are parsed as YAML scalars, as ``az ml`` does (``1`` -> int, ``true`` -> bool)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if value is None or isinstance(value, (str, int, float, bool, list, dict)) else text


def apply_set_overrides(data: dict[str, Any], overrides: list[str] | list[dict[str, Any]] | None) -> dict[str, Any]:
    """Apply ``--set a.b.c=value`` overrides (``params_override`` in the SDK) in place.

    Raises:
        ValidationError: an override without ``=`` or one that walks into a non-mapping.
    """
    for item in overrides or []:
        pairs: list[tuple[str, Any]]
        if isinstance(item, dict):
            pairs = list(item.items())
        else:
            if "=" not in item:
                raise ValidationError(f"--set {item!r}: expected key.path=value")
            key, _, raw = item.partition("=")
            pairs = [(key.strip(), _coerce_scalar(raw))]
        for key, value in pairs:
            parts = [p for p in key.split(".") if p]
            if not parts:
                raise ValidationError(f"--set {key!r}: empty key")
            node: Any = data
            for part in parts[:-1]:
                if not isinstance(node, dict):
                    raise ValidationError(f"--set {key}: {part!r} is not inside a mapping")
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
            if not isinstance(node, dict):
                raise ValidationError(f"--set {key}: cannot set a field of a non-mapping value")
            node[parts[-1]] = value
    return data
