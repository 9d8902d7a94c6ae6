"""Module sizes and the package import graph of src/openaml, in one command.

    .venv/bin/python scripts/module_sizes.py            # size distribution, largest modules, graph
    .venv/bin/python scripts/module_sizes.py --check    # exit 1 on a package-level import cycle

Sizes are lines per module. The graph has one node per top-level unit of ``openaml`` (a
subpackage such as ``services``, or a root module such as ``_load``) and an edge A -> B when any
module of A imports one of B, counting imports inside functions (a lazy import still makes a
dependency). A cycle is a strongly connected set of two or more units.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "openaml"
BUCKETS = (100, 200, 400, 600, 800)


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def sizes(root: Path = ROOT) -> dict[str, int]:
    """Lines per module, keyed by the path relative to ``src/``."""
    return {str(f.relative_to(root.parent)): len(f.read_text().splitlines()) for f in sorted(root.rglob("*.py"))}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Unit -> the units it imports (module level and inside functions)."""
    edges: dict[str, set[str]] = {}
    for f in root.rglob("*.py"):
        mod = ".".join(f.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        src = _unit(mod) if mod != "openaml" else "__init__"
        if src in ("__init__", "__main__"):
            continue
        pkg = mod if f.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    targets = [".".join(base + ([node.module] if node.module else []))]
                elif node.module:
                    targets = [node.module]
            for t in targets:
                if t.startswith("openaml.") and _unit(t) not in (src, "__init__"):
                    edges.setdefault(src, set()).add(_unit(t))
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of two or more units (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check for import cycles (exit 1 if any)")
    args = ap.parse_args()
    edges = import_graph()
    found = cycles(edges)
    if not args.check:
        lines = sizes()
        values = sorted(lines.values())
        print(f"modules: {len(values)}, lines: {sum(values)}, median {values[len(values) // 2]}, max {values[-1]}")
        lo = 0
        for hi in (*BUCKETS, None):
            n = sum(1 for v in values if v > lo and (hi is None or v <= hi))
            print(f"  {f'{lo + 1}-{hi}' if hi else f'> {lo}':>10} lines: {n}")
            lo = hi or lo
        print("largest:")
        for path, n in sorted(lines.items(), key=lambda kv: -kv[1])[:10]:
            print(f"  {n:5d}  {path}")
        print("package imports (counting imports inside functions):")
        for src in sorted(edges):
            print(f"  {src} -> {', '.join(sorted(edges[src]))}")
    for c in found:
        print("cycle: " + " <-> ".join(c))
    if not found and not args.check:
        print("no import cycle")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
