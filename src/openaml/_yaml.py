"""YAML loading that remembers where every value came from.

``load_yaml_with_lines(path)`` returns the parsed mapping plus a map from field paths
(tuples such as ``("inputs", "data", "path")``) to 1-based line numbers, so that validation
errors can name the file, the line and the field, as ``az ml`` does.

PyYAML is imported on first use, not with this module: entities import it, and a CLI command that
only shows records (``openaml job list``) parses no YAML.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openaml.errors import ValidationError

if TYPE_CHECKING:
    import yaml

__all__ = ["load_yaml_with_lines", "LineMap", "dump_yaml", "apply_set_overrides", "format_loc", "safe_load",
           "ALIAS_BUDGET"]

LineMap = dict[tuple[Any, ...], int]

#: values that aliases (``*name``, ``<<: *name``) may add beyond the file's own nodes. A real spec
#: reuses a few blocks; a "billion laughs" file reaches millions within a few hundred bytes.
ALIAS_BUDGET = 10_000


def _check_aliases(root: yaml.Node, source: str) -> None:
    """Refuse recursive aliases and alias expansion beyond :data:`ALIAS_BUDGET` before building anything.

    Walks the composed node graph once (memoised by node identity), so the check costs the size
    of the file, not of its expansion.

    Raises:
        ValidationError: naming ``source`` and the line of the offending alias or anchor.
    """
    import yaml

    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    expanded = 0

    def children(node: yaml.Node) -> list[yaml.Node]:
        if isinstance(node, yaml.MappingNode):
            return [n for pair in node.value for n in pair]
        if isinstance(node, yaml.SequenceNode):
            return list(node.value)
        return []

    def size(node: yaml.Node) -> int:
        nonlocal expanded
        key = id(node)
        if key in on_path:
            raise ValidationError(
                f"{source}: line {node.start_mark.line + 1}: a YAML alias refers to the anchored value that "
                "contains it (a recursive alias); write the value out instead",
                details={"file": source, "line": node.start_mark.line + 1})
        if key in sizes:  # a second use of an anchored node: an alias, expanded again when built
            expanded += sizes[key]
            if expanded > ALIAS_BUDGET:
                raise ValidationError(
                    f"{source}: YAML aliases expand to more than {ALIAS_BUDGET} values (an alias bomb?); "
                    f"refused at the alias of the anchor at line {node.start_mark.line + 1}. Write repeated "
                    "blocks out, or reuse fewer anchors", details={"file": source, "line": node.start_mark.line + 1})
            return sizes[key]
        on_path.add(key)
        total = 1 + sum(size(child) for child in children(node))
        on_path.discard(key)
        sizes[key] = total
        return total

    try:
        size(root)
    except RecursionError:
        raise ValidationError(f"{source}: the YAML is nested too deeply", details={"file": source}) from None


def safe_load(text: str, source: str = "<string>") -> Any:
    """``yaml.safe_load`` with the alias checks of :func:`_check_aliases` (any top-level value).

    Raises:
        ValidationError: invalid YAML, a recursive alias, or an alias bomb; the message names ``source``.
        yaml.YAMLError: never (converted to ValidationError).
    """
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ValidationError(f"{source}: invalid YAML at {where}: {getattr(exc, 'problem', None) or exc}",
                              details={"file": source}) from None
    finally:
        loader.dispose()


def _construct(node: yaml.Node, path: tuple[Any, ...], lines: LineMap, loader: yaml.SafeLoader) -> Any:
    import yaml

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
    if p.is_dir():
        raise ValidationError(f"{p} is a directory, not a file: give the YAML file (e.g. {p / 'job.yml'})",
                              details={"file": str(p)})
    if not p.is_file():
        raise ValidationError(f"{p}: file not found", details={"file": str(p)})
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{p}: not a UTF-8 text file (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
                              "save the YAML as UTF-8", details={"file": str(p), "position": exc.start}) from None
    except OSError as exc:
        raise ValidationError(f"{p}: cannot be read ({exc.strerror or exc})", details={"file": str(p)}) from None
    return parse_yaml_with_lines(text, source=str(p))


def parse_yaml_with_lines(text: str, source: str = "<string>") -> tuple[dict[str, Any], LineMap]:
    import yaml

    loader = yaml.SafeLoader(text)
    lines: LineMap = {}
    try:
        node = loader.get_single_node()
        if node is None:
            raise ValidationError(f"{source}: the file is empty; expected a YAML mapping",
                                  details={"file": source})
        _check_aliases(node, source)
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
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _coerce_scalar(text: str) -> Any:
    """``--set`` values are parsed as YAML scalars, as ``az ml`` does (``1`` -> int, ``true`` -> bool)."""
    try:
        value = safe_load(text, source="--set value")
    except ValidationError:
        return text
    return value if value is None or isinstance(value, (str, int, float, bool, list, dict)) else text


def override_sources(overrides: list[str] | list[dict[str, Any]] | None) -> dict[tuple[Any, ...], str]:
    """The field path each override of :func:`apply_set_overrides` sets -> the override as the user wrote
    it (``--set a.b=x``; an SDK ``params_override`` mapping item as ``params_override a.b=<value>``), so
    that an error in a value it set names the override, not a line of the file."""
    out: dict[tuple[Any, ...], str] = {}
    for item in overrides or []:
        if isinstance(item, dict):
            for key, value in item.items():
                out[tuple(p for p in str(key).split(".") if p)] = f"params_override {key}={value!r}"
        elif isinstance(item, str) and "=" in item:
            key = item.partition("=")[0].strip()
            out[tuple(p for p in key.split(".") if p)] = f"--set {item}"
    out.pop((), None)
    return out


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
