"""Parallel jobs over tabular inputs: a csv/parquet ``uri_file`` or an MLTable cut into mini-batches
of about ``mini_batch_size`` bytes (``run()`` gets a DataFrame), and ``partition_keys``
(``run(df, mini_batch_context)`` with ``partition_key_value``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from openaml import Input, Output
from openaml.parallel import RunFunction, parallel_run_function


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


TABLE_SCORE = """
    import pandas as pd
    def init():
        pass
    def run(df):
        assert isinstance(df, pd.DataFrame), type(df)
        return pd.DataFrame({"id": df["id"], "double": df["x"] * 2, "n": len(df)})
    """

PARTITION_SCORE = """
    def run(df, mini_batch_context):
        g = mini_batch_context.partition_key_value["g"]
        assert set(df["g"]) == {g}
        return [f"{g} {len(df)} {int(df['x'].sum())}"]
    """


def _table(n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "x": [i % 17 for i in range(n)], "g": [f"k{i % 3}" for i in range(n)]})


def _job(tmp_path: Path, script: str, inp: Input, mbs: str, **kw):  # type: ignore[no-untyped-def]
    _write(tmp_path / "src" / "score.py", script)
    return parallel_run_function(
        display_name="tabular", experiment_name="parallel-tests", compute="local",
        inputs={"table": inp}, outputs={"scored": Output(type="uri_folder")}, input_data="${{inputs.table}}",
        mini_batch_size=mbs, max_concurrency_per_instance=2, retry_settings={"max_retries": 0, "timeout": 60},
        task=RunFunction(code=str(tmp_path / "src"), entry_script="score.py", append_row_to="${{outputs.scored}}"),
        **kw)


def _lines(ml_client, name: str, out: Path) -> list[str]:  # type: ignore[no-untyped-def]
    ml_client.jobs.download(name, output_name="scored", download_path=out)
    return next(out.rglob("parallel_run_step.txt")).read_text().splitlines()


def test_csv_uri_file_split_by_size_rows_in_order(ml_client, tmp_path):
    csv = tmp_path / "t.csv"
    _table(1000).to_csv(csv, index=False)
    job = ml_client.jobs.create_or_update(_job(tmp_path, TABLE_SCORE, Input(type="uri_file", path=str(csv)), "2kb"))
    final = ml_client.jobs.wait(job.name, timeout=120)
    assert final.status == "Completed", ml_client.jobs.get_raw(job.name)["log_tail"]
    lines = _lines(ml_client, job.name, tmp_path / "out")
    assert [int(x.split()[0]) for x in lines] == list(range(1000))
    assert all(int(x.split()[1]) == 2 * (int(x.split()[0]) % 17) for x in lines)
    sizes = {int(x.split()[2]) for x in lines}
    assert len(sizes) > 1 and max(sizes) < 1000  # several mini-batches of a few hundred rows


def test_parquet_mltable_split_by_size(ml_client, tmp_path):
    folder = tmp_path / "tbl"
    folder.mkdir()
    _table(600).iloc[:300].to_parquet(folder / "a.parquet", index=False)
    _table(600).iloc[300:].to_parquet(folder / "b.parquet", index=False)
    _write(folder / "MLTable", """
        paths:
          - pattern: ./*.parquet
        transformations:
          - read_parquet
        """)
    job = ml_client.jobs.create_or_update(_job(tmp_path, TABLE_SCORE, Input(type="mltable", path=str(folder)), "1kb"))
    final = ml_client.jobs.wait(job.name, timeout=120)
    assert final.status == "Completed", ml_client.jobs.get_raw(job.name)["log_tail"]
    lines = _lines(ml_client, job.name, tmp_path / "out")
    assert [int(x.split()[0]) for x in lines] == list(range(600))


def test_mltable_partition_keys_one_mini_batch_per_value(ml_client, tmp_path):
    folder = tmp_path / "tbl"
    folder.mkdir()
    df = _table(90)
    df.iloc[:50].to_csv(folder / "part1.csv", index=False)
    df.iloc[50:].to_csv(folder / "part2.csv", index=False)
    _write(folder / "MLTable", """
        paths:
          - pattern: ./*.csv
        transformations:
          - read_delimited:
              delimiter: ","
              header: all_files_same_headers
        """)
    job = ml_client.jobs.create_or_update(_job(tmp_path, PARTITION_SCORE, Input(type="mltable", path=str(folder)),
                                               "1MB", partition_keys=["g"]))
    final = ml_client.jobs.wait(job.name, timeout=120)
    assert final.status == "Completed", ml_client.jobs.get_raw(job.name)["log_tail"]
    expect = [f"{g} {len(d)} {int(d['x'].sum())}" for g, d in df.groupby("g")]
    assert _lines(ml_client, job.name, tmp_path / "out") == expect


def test_tabular_bad_input_refused_naming_the_field(ml_client, tmp_path):
    import pytest

    from openaml.errors import ValidationError

    csv = tmp_path / "t.csv"
    _table(10).to_csv(csv, index=False)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    jl = tmp_path / "jl"
    jl.mkdir()
    (jl / "a.jsonl").write_text('{"x": 1}\n')
    (jl / "MLTable").write_text("paths:\n  - file: ./a.jsonl\ntransformations:\n  - read_json_lines:\n      "
                                "encoding: utf8\n")
    (tmp_path / "tbl").mkdir()
    _table(10).to_csv(tmp_path / "tbl" / "t.csv", index=False)
    (tmp_path / "tbl" / "MLTable").write_text("paths:\n  - file: ./t.csv\ntransformations:\n  - read_delimited:\n"
                                              "      delimiter: ','\n")
    before = len(ml_client.jobs.list_raw(include_archived=True))
    cases = [
        (Input(type="mltable", path=str(jl.parent / "tbl")), "10", {}, "mini_batch_size", "is a count"),
        (Input(type="uri_file", path=str(empty)), "1kb", {}, "input_data", "empty file"),
        (Input(type="uri_folder", path=str(folder)), 1, {"partition_keys": ["g"]}, "partition_keys",
         "mltable inputs only"),
        (Input(type="mltable", path=str(jl)), "1kb", {}, "input_data", "read_json_lines"),
    ]
    for inp, mbs, extra, field, words in cases:
        with pytest.raises(ValidationError) as info:
            ml_client.jobs.create_or_update(_job(tmp_path, TABLE_SCORE, inp, mbs, **extra))
        assert field in info.value.message and words in info.value.message, info.value.message
    assert len(ml_client.jobs.list_raw(include_archived=True)) == before


FILE_SCORE = """
    def run(mini_batch):
        assert isinstance(mini_batch, list), type(mini_batch)
        return [f"{p.rsplit('/', 1)[-1]} {len(open(p).read().splitlines())}" for p in mini_batch]
    """


def test_uri_file_with_a_count_or_none_is_a_file_input(ml_client, tmp_path):
    csv = tmp_path / "t.csv"
    _table(10).to_csv(csv, index=False)
    job = _job(tmp_path, FILE_SCORE, Input(type="uri_file", path=str(csv)), "1")
    job.mini_batch_size = None  # Azure's default for a file input: run() gets [path]
    created = ml_client.jobs.create_or_update(job)
    assert ml_client.jobs.wait(created.name, timeout=120).status == "Completed"
    assert _lines(ml_client, created.name, tmp_path / "out") == ["t.csv 11"]
