"""The plan: the input cut into mini-batches, numbered from 0 in a stable order (the package's
docstring says how a folder, a table and a partitioned MLTable are cut)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["plan_mini_batches", "read_table"]


def _list_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    out = [p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def _csv_chunks(path: Path, size: int, header: bool) -> list[dict[str, Any]]:
    import mmap

    if path.stat().st_size == 0:
        return []
    with open(path, "rb") as fh:
        data: Any = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)  # not read into memory
    start = 0
    head = ""
    if header:
        nl = data.find(b"\n")
        start = len(data) if nl < 0 else nl + 1
        head = data[:start].decode("utf-8", errors="replace")
    out = []
    row0 = 0  # the chunk's first row in its file (rows after the header, by line)
    while start < len(data):
        end = min(len(data), start + size)
        if end < len(data):
            nl = data.find(b"\n", end - 1)
            end = len(data) if nl < 0 else nl + 1
        chunk = data[start:end]
        rows = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        if chunk.strip():
            out.append({"kind": "csv", "file": str(path), "start": start, "end": end, "header": head, "n": max(rows, 1),
                        "row0": row0, "source": f"{path.name}[{start}:{end}]"})
        row0 += rows
        start = end
    data.close()
    return out


def plan_mini_batches(cfg: dict[str, Any], input_path: Path) -> list[dict[str, Any]]:
    """The mini-batches of the job, in their stable order (index = position)."""
    tab = cfg.get("tabular")
    if not tab:
        files = _list_files(input_path)
        n = int(cfg["mini_batch_size"])
        base = input_path if input_path.is_dir() else input_path.parent
        return [{"kind": "files", "items": [str(p) for p in files[i:i + n]], "n": len(files[i:i + n]),
                 "source": ";".join(p.relative_to(base).as_posix() for p in files[i:i + n])}
                for i in range(0, len(files), n)]
    root = input_path if input_path.is_dir() else input_path.parent
    files = [root / f for f in tab["files"]] if tab.get("files") else [input_path]
    fmt = tab.get("format", "csv")
    if cfg.get("partition_keys"):
        import pandas as pd

        keys = list(cfg["partition_keys"])
        frame = pd.concat([read_table(f, fmt, tab, columns=keys) for f in files], ignore_index=True)
        groups = frame.groupby(keys, sort=True, dropna=False).size()
        out = []
        for values, count in groups.items():
            vals = values if isinstance(values, tuple) else (values,)
            kv = {k: _plain(v) for k, v in zip(keys, vals)}  # noqa: B905 - the job's Python may be 3.7
            out.append({"kind": "partition", "files": [str(f) for f in files], "format": fmt, "tab": tab,
                        "partition": kv, "n": int(count), "source": json.dumps(kv, sort_keys=True)})
        return out
    size = int(cfg["mini_batch_size"])
    out = []
    for f in files:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(str(f)).metadata
            rows, nbytes = meta.num_rows, max(1, f.stat().st_size)
            per = max(1, int(size * rows / nbytes))
            for s in range(0, rows, per):
                e = min(rows, s + per)
                out.append({"kind": "parquet", "file": str(f), "start": s, "end": e, "n": e - s, "row0": s,
                            "source": f"{f.name}[rows {s}:{e}]"})
        else:
            out.extend(_csv_chunks(f, size, header=tab.get("header", True)))
    return out


def _plain(v: Any) -> Any:
    try:
        return v.item()  # numpy scalars
    except AttributeError:
        return v


def read_table(path: Path | str, fmt: str, tab: dict[str, Any], columns: list[str] | None = None) -> Any:
    import pandas as pd

    if fmt == "parquet":
        return pd.read_parquet(path, columns=columns)
    return pd.read_csv(path, sep=tab.get("delimiter", ","), header=0 if tab.get("header", True) else None,
                       usecols=columns, encoding=tab.get("encoding", "utf-8"))


