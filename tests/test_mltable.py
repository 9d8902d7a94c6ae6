"""MLTable: validation of the file (unit), and the real ``mltable`` package reading registered assets."""

from __future__ import annotations

import os
import shutil
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openaml.datastores import validate_mltable_folder, validate_mltable_text
from openaml.entities import Data
from openaml.errors import ValidationError

TITANIC_MLTABLE = """\
$schema: https://azuremlschemas.azureedge.net/latest/MLTable.schema.json
type: mltable
paths:
  - file: ./titanic.csv
transformations:
  - read_delimited:
      delimiter: ","
      encoding: ascii
      header: all_files_same_headers
      empty_as_string: false
  - convert_column_types:
      - columns: [Age, Fare]
        column_type: float
      - columns: [Pclass, SibSp, Parch]
        column_type: int
      - columns: Name
        column_type: string
"""


def _check(text: str, folder: Path | None = None) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        validate_mltable_text(textwrap.dedent(text), source="my_data/MLTable", folder=folder)
    return info.value


# ---------------------------------------------------------------------------- unit: the validator
def test_valid_mltable_with_every_listed_transformation(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.csv").write_text("a\n1\n")
    (tmp_path / "x.csv").write_text("a\n1\n")
    spec = validate_mltable_text(textwrap.dedent("""\
        paths:
          - file: ./x.csv
          - folder: d
          - pattern: ./**/*.csv
          - file: https://example.com/y.csv
          - folder: azureml://datastores/workspaceblobstore/paths/p/
        traits:
          timestamp_column: ts
        transformations:
          - read_delimited:
              delimiter: ";"
              encoding: utf8
              header: no_header
              empty_as_string: true
              include_path_column: true
              infer_column_types: false
          - read_json_lines: {encoding: utf8, invalid_lines: drop, include_path_column: false}
          - read_parquet: {include_path_column: true}
          - read_delimited
          - convert_column_types:
              - {columns: [a, b], column_type: float}
              - {columns: c, column_type: {datetime: {formats: ["%Y-%m-%d"]}}}
              - {columns: d, column_type: {boolean: {true_values: ["yes"], false_values: ["no"]}}}
          - drop_columns: [a]
          - keep_columns: {pattern: "^b", ignore_case: true}
          - take: 10
          - skip: 1
          - extract_columns_from_partition_format: {partition_format: "{Store}/{Brand}/{file}.csv"}
        """), source="MLTable", folder=tmp_path)
    assert len(spec["transformations"]) == 10


@pytest.mark.parametrize("text, line, field, words", [
    ("paths:\n  - file: ./a.csv\ncolour: red\n", 3, "colour", "unknown field"),
    ("type: mltable\n", 1, "<root>", "'paths' is required"),
    ("paths: ./a.csv\n", 1, "paths", "non-empty list"),
    ("paths:\n  - files: ./a.csv\n", 2, "paths.0", "exactly one of: file, folder, pattern"),
    ("paths:\n  - file: ''\n", 2, "paths.0.file", "non-empty path"),
    ("paths:\n  - file: ftp://h/a.csv\n", 2, "paths.0.file", "scheme 'ftp' is not supported"),
    ("paths:\n  - file: x\ntransformations:\n  - read_delimited:\n      header: first_row\n", 5,
     "transformations.0.read_delimited.header", "all_files_same_headers"),
    ("paths:\n  - file: x\ntransformations:\n  - read_delimited:\n      encoding: utf-9\n", 5,
     "transformations.0.read_delimited.encoding", "allowed: utf8"),
    ("paths:\n  - file: x\ntransformations:\n  - read_delimited:\n      delimiter: ';;;'\n", 5,
     "transformations.0.read_delimited.delimiter", "must be one character"),
    ("paths:\n  - file: x\ntransformations:\n  - read_delimited:\n      empty_as_string: maybe\n", 5,
     "transformations.0.read_delimited.empty_as_string", "true or false"),
    ("paths:\n  - file: x\ntransformations:\n  - read_delimited:\n      separator: ','\n", 5,
     "transformations.0.read_delimited.separator", "unknown option; allowed: delimiter"),
    ("paths:\n  - file: x\ntransformations:\n  - read_delimited:\n", 4,
     "transformations.0.read_delimited", "without the colon"),
    ("paths:\n  - file: x\ntransformations:\n  - read_json_lines: {invalid_lines: skip}\n", 4,
     "transformations.0.read_json_lines.invalid_lines", "error, drop"),
    ("paths:\n  - file: x\ntransformations:\n  - read_csv: {}\n", 4,
     "transformations.0.read_csv", "unknown transformation; known: read_delimited"),
    ("paths:\n  - file: x\ntransformations:\n  - take: -3\n", 4, "transformations.0.take", "integer >= 0"),
    ("paths:\n  - file: x\ntransformations:\n  - skip: ten\n", 4, "transformations.0.skip", "integer >= 0"),
    ("paths:\n  - file: x\ntransformations:\n  - take\n", 4, "transformations.0", "needs a value"),
    (("paths:\n  - file: x\ntransformations:\n  - convert_column_types:\n      - columns: Age\n"
     "        column_type: decimal\n"), 6, "transformations.0.convert_column_types.0.column_type", "float"),
    ("paths:\n  - file: x\ntransformations:\n  - convert_column_types:\n      - columns: Age\n", 5,
     "transformations.0.convert_column_types.0", "'column_type' is required"),
    ("paths:\n  - file: x\ntransformations:\n  - drop_columns: 3\n", 4, "transformations.0.drop_columns",
     "column name"),
    (("paths:\n  - file: x\ntransformations:\n  - extract_columns_from_partition_format:\n"
     "      partition_format: no-columns\n"), 5,
     "transformations.0.extract_columns_from_partition_format.partition_format", "{column}"),
    ("paths:\n  - file: x\ntransformations:\n  - {take: 1, skip: 2}\n", 4, "transformations.0", "one key"),
    ("paths:\n  - file: x\ntype: table\n", 3, "type", "must be 'mltable'"),
])
def test_bad_mltable_names_file_line_and_field(text, line, field, words):
    err = _check(text)
    assert err.message.startswith("my_data/MLTable, line"), err.message
    assert f"line {line}: field '{field}'" in err.message, err.message
    assert words in err.message, err.message
    assert err.details["file"] == "my_data/MLTable"


def test_every_problem_is_reported_in_file_order():
    err = _check("""\
        paths:
          - file: ftp://x/y
        transformations:
          - take: -1
          - read_delimited: {header: maybe}
        extra: 1
        """)
    lines = [e["line"] for e in err.details["errors"]]
    assert lines == sorted(lines) and len(lines) == 4


def test_invalid_yaml_names_the_line():
    err = _check("paths:\n  - file: [a\n")
    assert "my_data/MLTable: invalid YAML at line" in err.message


def test_local_paths_checked_against_the_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.csv").write_text("a\n")
    outside = tmp_path.parent / f"outside-{uuid.uuid4().hex}.csv"
    outside.write_text("secret\n")
    os.symlink(outside, tmp_path / "link.csv")
    try:
        cases = {
            "file: ./missing.csv": "does not exist",
            "file: ./sub": "is a folder; use 'folder:'",
            "folder: ./a.csv": "is a file; use 'file:'",
            "file: ../a.csv": "only the MLTable's folder is uploaded",
            "file: /etc/hostname": "is absolute",
            "file: ./link.csv": "leaves its folder through a symlink",
            "pattern: ./*.parquet": "matches no file",
            "pattern: ../*.csv": "must stay inside the MLTable folder",
        }
        for entry, words in cases.items():
            err = _check(f"paths:\n  - {entry}\n", folder=tmp_path)
            assert "line 2: field 'paths.0." in err.message and words in err.message, (entry, err.message)
    finally:
        outside.unlink()


def test_folder_without_mltable_file_says_how_to_fix(tmp_path):
    (tmp_path / "mltable.yaml").write_text("paths: []\n")
    with pytest.raises(ValidationError, match="must be named exactly 'MLTable'"):
        validate_mltable_folder(tmp_path)
    with pytest.raises(ValidationError, match="is not a folder"):
        validate_mltable_folder(tmp_path / "mltable.yaml")


# ---------------------------------------------------------------------------- the real mltable package
@pytest.fixture(scope="module")
def server_datastores(server) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """The server workspace's DatastoreService, opened in-process over the same metadata database."""
    from openaml._settings import Settings
    from openaml.services._context import WorkspaceContext
    from openaml.services.datastores import DatastoreService
    from openaml.store import MetadataStore
    from openaml.workspace import WorkspaceLayout

    settings = Settings(workspace=server.path)
    store = MetadataStore(settings.metadata_url).start()
    ctx = WorkspaceContext(settings=settings, layout=WorkspaceLayout(server.path), store=store,
                           tracking=None)  # type: ignore[arg-type]  # datastores never touch tracking
    svc = DatastoreService(ctx)
    ctx.services["datastores"] = svc
    yield svc
    store.close()


def test_titanic_mltable_registered_then_loaded_by_mltable(ml_client, server_datastores, tmp_path, titanic_csv):
    import mltable

    folder = tmp_path / "my_data"
    folder.mkdir()
    shutil.copy(titanic_csv, folder / "titanic.csv")
    (folder / "MLTable").write_text(TITANIC_MLTABLE)
    name = f"titanic-table-{uuid.uuid4().hex[:8]}"
    created = ml_client.data.create_or_update(Data(name=name, version="1", type="mltable", path=str(folder)))

    asset = ml_client.data.get(name, version="1")
    assert asset.type == "mltable" and asset.path == created.path
    local = server_datastores.resolve(asset.path)
    assert (local / "MLTable").is_file() and (local / "titanic.csv").is_file()

    df = mltable.load(str(local)).to_pandas_dataframe()
    assert df.shape == (891, 12)
    assert list(df.columns) == ["PassengerId", "Survived", "Pclass", "Name", "Sex", "Age", "SibSp", "Parch",
                                "Ticket", "Fare", "Cabin", "Embarked"]
    assert str(df["Age"].dtype) == "float64" and str(df["Fare"].dtype) == "float64"
    assert str(df["Pclass"].dtype) == "int64" and str(df["SibSp"].dtype) == "int64"
    assert df["Age"].isna().sum() == 177  # empty cells stay missing (empty_as_string: false)
    assert int(df["Survived"].sum()) == 342
    assert df["Name"].iloc[0] == "Braund, Mr. Owen Harris"


def test_file_folder_and_pattern_paths_load(ml_client, server_datastores, tmp_path, titanic_csv):
    import mltable

    lines = titanic_csv.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    root = tmp_path / "tables"
    parts = root / "parts"
    (parts / "b").mkdir(parents=True)
    (parts / "a.csv").write_text("\n".join([header, *rows[:300]]) + "\n")
    (parts / "b" / "b.csv").write_text("\n".join([header, *rows[300:]]) + "\n")
    (parts / "notes.txt").write_text("not data\n")
    (root / "one.csv").write_text("\n".join([header, *rows[:10]]) + "\n")
    cases = {
        "file: ./one.csv": 10,
        "folder: ./parts/b": 891 - 300,
        "pattern: ./parts/**/*.csv": 891,
    }
    for i, (entry, expected_rows) in enumerate(cases.items()):
        (root / "MLTable").write_text(f"paths:\n  - {entry}\ntransformations:\n  - read_delimited:\n"
                                      "      header: all_files_same_headers\n      include_path_column: true\n")
        d = ml_client.data.create_or_update(Data(name=f"paths-{i}-{uuid.uuid4().hex[:6]}", type="mltable",
                                                 path=str(root)))
        df = mltable.load(str(server_datastores.resolve(d.path))).to_pandas_dataframe()
        assert len(df) == expected_rows, entry
        assert "Path" in df.columns and "PassengerId" in df.columns


def test_bad_mltable_refused_by_sdk_before_upload(ml_client, server, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.csv").write_text("a\n1\n")
    (folder / "MLTable").write_text("paths:\n  - file: ./a.csv\ntransformations:\n  - read_delimited:\n"
                                    "      header: first_line\n")
    uploads = server.path / "datastores" / "workspaceblobstore" / "LocalUpload"
    before = set(os.listdir(uploads)) if uploads.exists() else set()
    with pytest.raises(ValidationError) as info:
        ml_client.data.create_or_update(Data(name="bad-table", type="mltable", path=str(folder)))
    assert f"{folder}/MLTable, line 5: field 'transformations.0.read_delimited.header'" in info.value.message
    assert (set(os.listdir(uploads)) if uploads.exists() else set()) == before


def test_bad_mltable_refused_by_server_for_datastore_paths(ml_client, server):
    rel = f"tables/{uuid.uuid4().hex}"
    folder = server.path / "datastores" / "workspaceblobstore" / rel
    folder.mkdir(parents=True)
    (folder / "MLTable").write_text("paths:\n  - file: ./missing.csv\n")
    uri = f"azureml://datastores/workspaceblobstore/paths/{rel}"
    with pytest.raises(ValidationError) as info:
        ml_client.data.create_or_update(Data(name="bad-ds-table", type="mltable", path=uri))
    assert f"{uri}/MLTable, line 2: field 'paths.0.file': './missing.csv' does not exist" in info.value.message
    (folder / "missing.csv").write_text("a\n1\n")
    assert ml_client.data.create_or_update(Data(name="bad-ds-table", type="mltable", path=uri)).path == uri
    (folder / "MLTable").unlink()
    with pytest.raises(ValidationError, match="has no MLTable file"):
        ml_client.data.create_or_update(Data(name="bad-ds-table", type="mltable", path=uri))
