"""``azureml://`` URIs from ``data.get(...).path`` open in the user's own Python: pandas and fsspec
(the ``azureml`` fsspec protocol, registered by entry point), mltable.load and mlflow artifact
downloads (issue 9 item 4). Each runs the real packages in a separate Python process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from openaml.entities import Data


def _user_python(code: str, server, cwd: Path) -> dict:
    env = {**os.environ, "OPENAML_WORKSPACE": ""}
    env.pop("OPENAML_WORKSPACE")
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code), server.url], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-4000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture
def assets(ml_client, tmp_path):
    tag = uuid.uuid4().hex[:8]
    csv = tmp_path / "iris.csv"
    csv.write_text("a,b,name\n1,2.5,é\n3,4.5,x\n")
    f = ml_client.data.create_or_update(Data(name=f"csv_{tag}", path=str(csv), type="uri_file"))
    tbl = tmp_path / "tbl"
    tbl.mkdir()
    (tbl / "t.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    (tbl / "MLTable").write_text("paths:\n  - file: ./t.csv\ntransformations:\n  - read_delimited:\n"
                                 "      delimiter: ','\n      header: all_files_same_headers\n")
    t = ml_client.data.create_or_update(Data(name=f"tbl_{tag}", path=str(tbl), type="mltable"))
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "sub" / "w.txt").write_text("weights")
    m = ml_client.data.create_or_update(Data(name=f"dir_{tag}", path=str(folder), type="uri_folder"))
    return {"csv": f.name, "tbl": t.name, "dir": m.name}


def test_pandas_fsspec_mltable_mlflow_read_azureml_uris(server, assets, tmp_path):
    code = f"""
        import json, sys
        from openaml import MLClient
        ml_client = MLClient(workspace=sys.argv[1])
        csv = ml_client.data.get({assets['csv']!r}, version="1").path
        tbl = ml_client.data.get({assets['tbl']!r}, version="1").path
        folder = ml_client.data.get({assets['dir']!r}, version="1").path
        assert csv.startswith("azureml://datastores/workspaceblobstore/paths/"), csv
        import pandas as pd
        df = pd.read_csv(csv)
        import fsspec
        fs, _ = fsspec.core.url_to_fs(folder)
        listed = sorted(p.rsplit("/", 1)[-1] for p in fs.find(folder))
        with fsspec.open(folder.rstrip("/") + "/sub/w.txt", "rt") as fh:
            text = fh.read()
        with fsspec.open("azureml://datastores/workspaceblobstore/paths/written/by/user.txt", "wt") as fh:
            fh.write("hello")
        import mltable
        tdf = mltable.load(tbl).to_pandas_dataframe()
        long_tbl = ("azureml://subscriptions/s/resourcegroups/rg/workspaces/" + ml_client.workspace_name
                    + "/datastores/" + tbl.split("azureml://datastores/", 1)[1])
        assert len(mltable.load(long_tbl).to_pandas_dataframe()) == 3
        import mlflow
        dst = mlflow.artifacts.download_artifacts(artifact_uri=folder.rstrip("/") + "/sub", dst_path={str(tmp_path / "dl")!r})
        long = ("azureml://subscriptions/s/resourcegroups/rg/workspaces/" + ml_client.workspace_name
                + "/datastores/" + csv.split("azureml://datastores/", 1)[1])
        df2 = pd.read_csv(long)
        df3 = pd.read_csv(long.replace("/workspaces/" + ml_client.workspace_name + "/", "/workspaces/azure-ws/"))
        assert len(df3) == 2
        print(json.dumps({{"cols": list(df.columns), "names": df["name"].tolist(), "listed": listed, "text": text,
                          "tbl": tdf["a"].astype(int).tolist(), "dl": sorted(__import__("os").listdir(dst)),
                          "long_rows": len(df2)}}))
    """
    out = _user_python(code, server, tmp_path)
    assert out["cols"] == ["a", "b", "name"] and out["names"] == ["é", "x"]
    assert out["listed"] == ["MLmodel", "w.txt"] and out["text"] == "weights"
    assert out["tbl"] == [1, 3, 5]
    assert out["dl"] == ["w.txt"]
    assert out["long_rows"] == 2
    assert (server.path / "datastores" / "workspaceblobstore" / "written" / "by" / "user.txt").read_text() == "hello"


def test_unknown_datastore_and_escape_are_refused(server, tmp_path):
    code = """
        import json, sys
        from openaml import MLClient
        MLClient(workspace=sys.argv[1])
        import pandas as pd
        errs = []
        for uri in ("azureml://datastores/nostore/paths/x.csv", "azureml://datastores/workspaceblobstore/paths/../x"):
            try:
                pd.read_csv(uri)
            except Exception as exc:
                errs.append(str(exc))
        print(json.dumps(errs))
    """
    errs = _user_python(code, server, tmp_path)
    assert "datastore 'nostore' not found" in errs[0]
    assert "'..'" in errs[1]
