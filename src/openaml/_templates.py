"""``${{...}}`` expressions and ``$[[ ... ]]`` optional blocks (spec 1.3).

Pure functions shared by the SDK (early validation), the server (validation at submission)
and the job runner (rendering with resolved local paths).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["EXPR", "OPTIONAL_BLOCK", "references", "render", "check_references", "format_literal"]

EXPR = re.compile(r"\$\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
OPTIONAL_BLOCK = re.compile(r"\$\[\[(.*?)\]\]", re.S)


def references(text: str) -> list[str]:
    """Every ``${{x.y}}`` expression in ``text``, in order (``["inputs.data", ...]``)."""
    return EXPR.findall(text or "")


def _split_optional(text: str) -> tuple[list[str], list[str]]:
    """(expressions inside optional blocks, expressions outside them)."""
    inside: list[str] = []
    for block in OPTIONAL_BLOCK.findall(text or ""):
        inside.extend(references(block))
    outside = references(OPTIONAL_BLOCK.sub("", text or ""))
    return inside, outside


def check_references(command: str, *, inputs: dict[str, Any], outputs: Iterable[str],
                     supplied: Iterable[str], extra_roots: Iterable[str] = ()) -> list[str]:
    """Problems with the expressions of ``command`` (empty when fine).

    Args:
        inputs: declared input names (values unused).
        outputs: declared output names.
        supplied: input names that have a value, path or default.
        extra_roots: other allowed roots, e.g. ``("search_space",)`` for sweep trials.
    """
    problems: list[str] = []
    declared_in, declared_out, have = set(inputs), set(outputs), set(supplied)
    leftover = EXPR.sub("", command or "")
    for broken in re.findall(r"\$\{\{[^}]{0,60}", leftover):
        problems.append(f"{broken!r} is not closed: expressions are written ${{{{inputs.<name>}}}}")
    inside, outside = _split_optional(command)
    for expr, optional in [(e, True) for e in inside] + [(e, False) for e in outside]:
        root, _, rest = expr.partition(".")
        if root == "inputs":
            if rest not in declared_in:
                problems.append(f"${{{{{expr}}}}} refers to input {rest!r}, which is not declared; "
                                f"declared inputs: {', '.join(sorted(declared_in)) or 'none'}")
            elif not optional and rest not in have:
                problems.append(f"required input {rest!r} has no value: give it a path (data and model inputs) "
                                f"or a value (literals), or wrap its use in an optional $[[...]] block")
        elif root == "outputs":
            if rest not in declared_out:
                problems.append(f"${{{{{expr}}}}} refers to output {rest!r}, which is not declared; "
                                f"declared outputs: {', '.join(sorted(declared_out)) or 'none'}")
        elif root in ("name", "default_datastore") and not rest:
            continue
        elif root in set(extra_roots):
            continue
        else:
            problems.append(f"${{{{{expr}}}}} is not a known expression; use ${{{{inputs.<name>}}}} or "
                            "${{outputs.<name>}}")
    return problems


def format_literal(value: Any) -> str:
    """How a literal input appears in a command line (Python's ``str``: True/False, 0.1)."""
    return str(value)


def render(text: str, lookup: Callable[[str], str | None]) -> str:
    """Replace expressions using ``lookup(expr) -> str | None``.

    An optional block is kept (without its brackets) when every expression in it has a non-empty
    value, and dropped otherwise: an optional input given ``""`` drops its block, as Azure ML
    renders it (no dangling ``--tag``). An expression outside blocks whose lookup gives None
    raises KeyError.
    """

    def block(m: re.Match[str]) -> str:
        body = m.group(1)
        values = {e: lookup(e) for e in references(body)}
        if any(v is None or v == "" for v in values.values()):
            return ""
        return EXPR.sub(lambda mm: str(values[mm.group(1)]), body)

    text = OPTIONAL_BLOCK.sub(block, text or "")

    def expr(m: re.Match[str]) -> str:
        v = lookup(m.group(1))
        if v is None:
            raise KeyError(m.group(1))
        return v

    return EXPR.sub(expr, text)
