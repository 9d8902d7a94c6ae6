"""The plan: the input cut into mini-batches, numbered from 0 in a stable order (the package's
docstring says how a folder, a table and a partitioned MLTable are cut)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["MULTI_LINE_WARNING", "plan_mini_batches", "read_table"]


def _list_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    out = [p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


MULTI_LINE_WARNING = "warning: quoted line break:"


def _record_end(data: Any, start: int, end: int, multi_line: bool) -> tuple[int, int]:
    """The end of the record that holds byte ``end - 1`` (just after its line break) and the count
    of quote characters in ``data[start:new_end]``. ``multi_line``: a line break inside a quoted
    field (an odd number of quotes since ``start``, a record boundary) does not end a record."""
    n = len(data)
    nl = data.find(b"\n", end - 1)
    new_end = n if nl < 0 else nl + 1
    quotes = data[start:new_end].count(b'"')
    while multi_line and quotes % 2 and new_end < n:
        nl = data.find(b"\n", new_end)
        nxt = n if nl < 0 else nl + 1
        quotes += data[new_end:nxt].count(b'"')
        new_end = nxt
    return new_end, quotes


def _records(chunk: bytes, quotes: int, multi_line: bool) -> int:
    """The records in ``chunk`` (which starts at a record boundary): its line breaks, those inside
    quoted fields not counted when ``multi_line``, plus an unterminated last one."""
    if multi_line and quotes:
        parts = chunk.split(b'"')
        breaks = sum(parts[i].count(b"\n") for i in range(0, len(parts), 2))
    else:
        breaks = chunk.count(b"\n")
    return breaks + (0 if chunk.endswith(b"\n") else 1)


def _csv_chunks(path: Path, size: int, header: bool, multi_line: bool = False,
                notes: list[str] | None = None) -> list[dict[str, Any]]:
    """A csv file's byte ranges of about ``size`` bytes, each ending at a line break (``multi_line``,
    the MLTable's ``support_multi_line: true``: at a record's end, never inside a quoted field).
    Without ``multi_line`` every line break ends a record, as Azure ML reads such a file; when a
    range then ends inside a quoted field, ``notes`` gets one warning naming the file and the fix."""
    import mmap

    if path.stat().st_size == 0:
        return []
    with open(path, "rb") as fh:
        data: Any = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)  # not read into memory
    start = 0
    head = ""
    if header:
        start, _q = _record_end(data, 0, 1, multi_line)
        head = data[:start].decode("utf-8", errors="replace")
    out = []
    row0 = 0  # the chunk's first record in its file (after the header)
    warned = False
    while start < len(data):
        end = min(len(data), start + size)
        if end < len(data):
            end, quotes = _record_end(data, start, end, multi_line)
        else:
            quotes = data[start:end].count(b'"')
        chunk = data[start:end]
        rows = _records(chunk, quotes, multi_line)
        if quotes % 2 and not multi_line and not warned and notes is not None:
            warned = True
            notes.append(f"{MULTI_LINE_WARNING} {path.name}: a quoted field holds a line break (bytes {start}:{end}) "
                         "and the MLTable's read_delimited does not set support_multi_line: true, so every line "
                         "break ends a record (as in Azure ML): records there are cut, and their mini-batches may "
                         "fail or get misaligned rows; set support_multi_line: true in the MLTable")
        if chunk.strip():
            out.append({"kind": "csv", "file": str(path), "start": start, "end": end, "header": head, "n": max(rows, 1),
                        "row0": row0, "source": f"{path.name}[{start}:{end}]"})
        row0 += rows
        start = end
    data.close()
    return out


def plan_mini_batches(cfg: dict[str, Any], input_path: Path, notes: list[str] | None = None) -> list[dict[str, Any]]:
    """The mini-batches of the job, in their stable order (index = position); what the job's log
    should warn about is appended to ``notes``."""
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
            out.extend(_csv_chunks(f, size, header=tab.get("header", True), multi_line=bool(tab.get("multi_line")),
                                   notes=notes))
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


