"""Batch scoring throughput: a parallel job vs the limit (plain Python, one process per core).

A generated Titanic-like model (scikit-learn pipeline: one-hot + scaling + logistic regression)
scores ``--files`` CSV files of ``--rows`` rows each (default 200 x 5,000). Measured in one run,
interleaved over ``--reps`` repetitions (medians reported):

- limit: the same model's ``predict`` over the same files in plain Python, one process per core
  (a fresh ``python`` that imports pandas and sklearn and loads the model once, then forks a
  ``multiprocessing.Pool`` that inherits them; one task per file, predictions written per file), no
  framework, timed from its start to its end as the job's engine is (imports and model loading
  included in both; the job's workers each import and load, in parallel);
- parallel job: ``type: parallel`` through a real ``openaml server``, ``mini_batch_size``
  ``--mbs`` files, ``max_concurrency_per_instance`` = cores, ``append_row`` output: the engine's
  own rows/s (driver start to end, from ``logs/job_progress_overview.txt``) and end to end (submit
  to Completed, with the runner, environment layer and output publication);
- per-mini-batch overhead: a no-op ``run()`` over one-file mini-batches with one worker: the
  engine's time from its worker ready (init() done) to the end / mini-batches (dispatch, result,
  rows file, journal, output assembly);
- job start: a batch endpoint's invoke (the input a registered data asset: nothing uploaded) to the
  first mini-batch's rows file written, environment built already, for the **first** invocation of a
  deployment (cold: its workers import everything) and a **later** one (warm: the deployment's warm
  pool, started after the first job, has imported the environment's libraries; the target applies
  to it), and the part of each that is the workers' own start (imports, ``init()``: the model);
- the engine's start alone (the driver run by hand, as the runner runs it, over 8 one-file
  mini-batches, warm): first worker ready and the CPU of its processes, workers forked from the
  zygote vs fresh processes (``OPENAML_PARALLEL_FORK=0``, the engine before the zygote);
- Ray Data ``map_batches`` on the same files when ``ray`` is installed (else a note): a local Ray
  (``num_cpus`` = the cores, loopback, no dashboard), ``read_csv`` -> ``map_batches`` (an actor per
  core loading the model once) -> ``write_csv``, after the server's runs.

``.venv/bin/python bench/batch.py [--files 200] [--rows 5000] [--mbs 1] [--reps 3] [--quick]``
(``--quick``: 20 files x 1,000 rows, 1 repetition).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Row, median, openaml_server, parse_args, print_table, progress, save_results  # noqa: E402

SCORE = """
    import pickle, os
    import pandas as pd
    def init():
        global MODEL
        with open(os.environ["BENCH_MODEL"], "rb") as fh:
            MODEL = pickle.load(fh)
    def run(mini_batch):
        out = []
        for f in mini_batch:
            df = pd.read_csv(f)
            pred = MODEL.predict(df)
            name = os.path.basename(f)
            out.extend(f"{name} {i} {p}" for i, p in enumerate(pred))
        return out
    """

NOOP = """
    def init():
        pass
    def run(mini_batch):
        return [str(f) for f in mini_batch]
    """


def make_data(root: Path, files: int, rows: int) -> tuple[Path, Path]:
    """``files`` CSVs of ``rows`` Titanic-like passengers and a fitted model pickled at ``model.pkl``."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)

    def frame(n: int) -> pd.DataFrame:
        return pd.DataFrame({
            "Pclass": rng.integers(1, 4, n), "Sex": rng.choice(["male", "female"], n),
            "Age": rng.normal(30, 14, n).clip(0.5, 80).round(1), "SibSp": rng.integers(0, 4, n),
            "Parch": rng.integers(0, 3, n), "Fare": rng.gamma(2.0, 16.0, n).round(2),
            "Embarked": rng.choice(["S", "C", "Q"], n)})

    train = frame(5000)
    y = ((train["Sex"] == "female") ^ (train["Pclass"] == 3) | (train["Age"] < 10)).astype(int)
    num = ["Pclass", "Age", "SibSp", "Parch", "Fare"]
    model = Pipeline([("prep", ColumnTransformer([("num", StandardScaler(), num),
                                                  ("cat", OneHotEncoder(handle_unknown="ignore"), ["Sex", "Embarked"])])),
                      ("lr", LogisticRegression(max_iter=500))]).fit(train, y)
    model_path = root / "model.pkl"
    model_path.write_bytes(pickle.dumps(model))
    data = root / "data"
    data.mkdir()
    for i in range(files):
        frame(rows).to_csv(data / f"passengers_{i:04d}.csv", index=False)
    return data, model_path


# ---------------------------------------------------------------------- the limit
_MODEL: Any = None


def _init_limit(model_path: str) -> None:
    global _MODEL
    with open(model_path, "rb") as fh:
        _MODEL = pickle.load(fh)


def _score_file(job: tuple[str, str]) -> int:
    import pandas as pd

    path, out = job
    df = pd.read_csv(path)
    pred = _MODEL.predict(df)
    name = os.path.basename(path)
    lines = [f"{name} {i} {p}" for i, p in enumerate(pred)]
    with open(os.path.join(out, name + ".txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return len(lines)


def _limit_main(data: str, model: str, cores: int, out: str) -> None:
    """The limit, run as a fresh ``python bench/batch.py --limit-run ...``: the fastest plain script
    (imports and the model loaded once, before a fork Pool of one process per core inherits them; one
    task per file, predictions written per file)."""
    import pandas  # noqa: F401 - imported once, inherited by the forked processes

    _init_limit(model)  # sklearn imported and the model loaded once, before the fork
    files = sorted(str(p) for p in Path(data).iterdir())
    os.makedirs(out, exist_ok=True)
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        rows = sum(pool.map(_score_file, [(f, out) for f in files], chunksize=1))
    print(rows)


def _save_mlflow(model: Path, dest: Path, data: Path) -> None:
    """The bench's model saved as an MLflow model (``mlflow.sklearn``, an input example from the data)."""
    import mlflow.sklearn
    import pandas as pd

    with open(model, "rb") as fh:
        fitted = pickle.load(fh)
    example = pd.read_csv(next(iter(sorted(data.iterdir())))).head(5)
    mlflow.sklearn.save_model(fitted, str(dest), input_example=example)


def limit_rows_per_s(data: Path, model: Path, cores: int) -> float:
    """Rows/s of the limit: a fresh interpreter from its start to its end (imports included, as
    the parallel job's workers include theirs)."""
    import subprocess

    from _common import PYTHON

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        p = subprocess.run([PYTHON, __file__, "--limit-run", str(data), str(model), str(cores), out],
                           capture_output=True, text=True, check=True)
        return int(p.stdout.strip()) / (time.perf_counter() - t0)


# ---------------------------------------------------------------------- Ray Data (optional)
def ray_rows_per_s(data: Path, model: Path, cores: int) -> float | None:
    """Rows/s of Ray Data on a local Ray (``cores`` CPUs, loopback, no dashboard): ``read_csv`` ->
    ``map_batches`` of an actor per core that loads the model once -> ``write_csv``, timed from the
    pipeline's start (Ray itself started before) to its output written."""
    try:
        import ray
    except ImportError:
        return None
    ray.init(address="local", num_cpus=cores, include_dashboard=False, _node_ip_address="127.0.0.1",
             ignore_reinit_error=True, log_to_driver=False, logging_level="ERROR")
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        class Scorer:
            def __init__(self) -> None:
                with open(model, "rb") as fh:
                    self.model = pickle.load(fh)

            def __call__(self, batch: Any) -> Any:
                batch["pred"] = self.model.predict(batch)
                return batch

        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            ds = ray.data.read_csv(str(data)).map_batches(Scorer, batch_format="pandas", concurrency=cores)
            ds.write_csv(out)
            elapsed = time.perf_counter() - t0
            rows = sum(1 for f in Path(out).rglob("*.csv") for _ in open(f)) - sum(1 for _ in Path(out).rglob("*.csv"))
        return float(rows) / elapsed
    finally:
        ray.shutdown()


# ---------------------------------------------------------------------- the engine's start, A/B
def engine_start(data: Path, model: Path, src: Path, workers: int, fork: bool) -> tuple[float, float]:
    """The engine run by hand (as the runner runs it) over ``data``: (first worker ready in s, CPU s of
    all its processes), workers forked from the zygote (``fork``) or fresh processes
    (``OPENAML_PARALLEL_FORK=0``, the engine before the zygote)."""
    import base64
    import resource
    import shutil
    import subprocess

    from _common import PYTHON

    import openaml.parallel._driver as driver

    wd = Path(tempfile.mkdtemp(prefix="openaml-bench-engine-"))
    try:
        shutil.copy(src / "score.py", wd / "score.py")
        cfg = {"entry_script": "score.py", "mini_batch_size": 1, "max_concurrency": workers, "instance_count": 1,
               "max_retries": 0, "timeout": 600}
        env = {**os.environ, "OPENAML_PARALLEL_FORK": "1" if fork else "0", "BENCH_MODEL": str(model)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([PYTHON, driver.__file__, "--config", base64.b64encode(json.dumps(cfg).encode()).decode(),
                        "--input-data", str(data), "--append-row-to", str(wd / "out")], cwd=wd, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        info = dict(line.split(": ", 1) for line in (wd / "logs" / "job_progress_overview.txt").read_text().splitlines())
        return (float(info["first_worker_ready_seconds"]),
                after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    finally:
        shutil.rmtree(wd, ignore_errors=True)


# ---------------------------------------------------------------------- the parallel job
def follow(server: Any, ml: Any, name: str, *, poll: float) -> tuple[float | None, float, dict[str, str]]:
    """Wait for a parallel job to end: (when its first mini-batch's rows were written, epoch s, or
    None; when it was seen ending, epoch s; its ``logs/job_progress_overview.txt`` as a dict).

    Raises:
        RuntimeError: the job did not complete (its error and log tail).
    """
    rows_dir = server.path / "jobs" / name / "wd" / ".openaml_parallel" / "rows"
    first = None
    while True:
        raw = ml.jobs.get_raw(name)
        if first is None and rows_dir.is_dir():
            stamps = [p.stat().st_mtime for p in rows_dir.iterdir() if p.suffix == ".txt"]
            if stamps:
                first = min(stamps)
        if raw["status"] in ("Completed", "Failed", "Canceled"):
            break
        time.sleep(poll)
    end = time.time()
    if raw["status"] != "Completed":
        raise RuntimeError(f"bench job {name} {raw['status']}: {raw.get('error')} {raw.get('log_tail')}")
    overview = server.path / "jobs" / name / "wd" / "logs" / "job_progress_overview.txt"
    return first, end, dict(line.split(": ", 1) for line in overview.read_text().splitlines())


def run_parallel(server: Any, src: Path, data: str, model: Path, *, mbs: int, workers: int, tag: str) -> dict[str, Any]:
    """One parallel job over ``data`` (a registered data asset: no upload in the timings)."""
    from openaml import Input, MLClient, Output
    from openaml.parallel import RunFunction, parallel_run_function

    with MLClient(workspace=server.url) as ml:
        t0 = time.time()
        job = ml.jobs.create_or_update(parallel_run_function(
            display_name=f"bench-{tag}", experiment_name="bench-batch",
            inputs={"data": Input(type="uri_folder", path=data)}, outputs={"score": Output(type="uri_folder")},
            input_data="${{inputs.data}}", mini_batch_size=mbs, max_concurrency_per_instance=workers,
            retry_settings={"max_retries": 0, "timeout": 600}, environment_variables={"BENCH_MODEL": str(model)},
            task=RunFunction(code=str(src), entry_script="score.py", append_row_to="${{outputs.score}}")))
        first, end, info = follow(server, ml, job.name, poll=0.05)
        return {"name": job.name, "elapsed_engine": float(info["elapsed_seconds"]), "items": int(info["processed_items"]),
                "mini_batches": int(info["completed_mini_batches"]), "end_to_end": end - t0,
                "ready": float(info["first_worker_ready_seconds"]),
                "start": (first - t0) if first else float("nan")}


def invoke_start(server: Any, ml: Any, endpoint: str, deployment: str, data: str) -> tuple[float, float]:
    """One invocation of a batch deployment over ``data``: (invoke to the first mini-batch's rows
    written, the workers' own start: first worker ready from the driver's start), in s."""
    from openaml import Input

    t0 = time.time()
    job = ml.batch_endpoints.invoke(endpoint, deployment_name=deployment, input=Input(type="uri_folder", path=data))
    first, _, info = follow(server, ml, job.name, poll=0.02)
    return (first - t0) if first else float("nan"), float(info["first_worker_ready_seconds"])


def endpoint_rows(server: Any, ml: Any, endpoint: str, deployment: str, data: str) -> tuple[float, float, int]:
    """One invocation of a batch deployment over all of ``data``: (the engine's seconds, driver start
    to end; invoke to Completed, s; files scored)."""
    from openaml import Input

    t0 = time.time()
    job = ml.batch_endpoints.invoke(endpoint, deployment_name=deployment, input=Input(type="uri_folder", path=data))
    _, end, info = follow(server, ml, job.name, poll=0.05)
    return float(info["elapsed_seconds"]), end - t0, int(info["processed_items"])


def endpoint_deployments(ml: Any, src: Path, model: Path, mlflow_model: Path, workers: int) -> None:
    """A batch endpoint with two deployments over the same model: ``score`` (score.py) and ``nocode``
    (the MLflow model, openaml's built-in driver), each ``workers`` workers, one file a mini-batch.
    The bench measures them in use: after a first invocation each, once their warm pools are ready
    (a cold invocation pays the workers' imports and the model's load: see the job start rows; an
    MLflow scikit-learn model's load imports skops, and through scikit-learn's array API torch when
    installed, several seconds a worker)."""
    from openaml.entities import BatchDeployment, BatchEndpoint, BatchRetrySettings, Environment, Model

    ml.batch_endpoints.begin_create_or_update(BatchEndpoint(name="bench-rows")).result()
    common = dict(endpoint_name="bench-rows", compute="local", instance_count=1, max_concurrency_per_instance=workers,
                  mini_batch_size=1, output_file_name="predictions.csv",
                  retry_settings=BatchRetrySettings(max_retries=0, timeout=600))
    ml.batch_deployments.begin_create_or_update(BatchDeployment(
        name="score", model=Model(name="bench-titanic", path=str(model)), code_path=str(src),
        scoring_script="score.py", environment_variables={"BENCH_MODEL": str(model)},
        environment=Environment(image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"),
        **common)).result()
    ml.batch_deployments.begin_create_or_update(BatchDeployment(
        name="nocode", model=Model(name="bench-titanic-mlflow", path=str(mlflow_model), type="mlflow_model"),
        **common)).result()


def deployment_starts(server: Any, src: Path, model: Path, data: str, workers: int, reps: int) -> dict[str, list[float]]:
    """Per repetition a new batch deployment (score.py, ``workers`` workers): its first invocation
    (cold) and, once its warm pool is ready, a second one (warm)."""
    from openaml import MLClient
    from openaml.entities import BatchDeployment, BatchEndpoint, BatchRetrySettings, Environment, Model

    out: dict[str, list[float]] = {"cold": [], "cold_ready": [], "warm": [], "warm_ready": []}
    with MLClient(workspace=server.url) as ml:
        ml.batch_endpoints.begin_create_or_update(BatchEndpoint(name="bench-start")).result()
        for rep in range(reps):
            ml.batch_deployments.begin_create_or_update(BatchDeployment(
                name=f"score-{rep}", endpoint_name="bench-start", model=Model(name="bench-titanic", path=str(model)),
                code_path=str(src), scoring_script="score.py", compute="local", instance_count=1,
                environment=Environment(image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"),
                max_concurrency_per_instance=workers, mini_batch_size=1, output_file_name="predictions.csv",
                environment_variables={"BENCH_MODEL": str(model)},
                retry_settings=BatchRetrySettings(max_retries=0, timeout=600))).result()
            before = set((server.path / "pools").glob("*/ready"))
            cold, cold_ready = invoke_start(server, ml, "bench-start", f"score-{rep}", data)
            deadline = time.monotonic() + 120  # the deployment's warm pool: started after its first job
            while time.monotonic() < deadline and not set((server.path / "pools").glob("*/ready")) - before:
                time.sleep(0.1)
            warm, warm_ready = invoke_start(server, ml, "bench-start", f"score-{rep}", data)
            for k, v in (("cold", cold), ("cold_ready", cold_ready), ("warm", warm), ("warm_ready", warm_ready)):
                out[k].append(v)
            progress(f"rep {rep}: job start cold {cold:.2f} s (workers {cold_ready:.2f} s), "
                     f"warm {warm:.2f} s (workers {warm_ready:.2f} s)")
    return out


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], lambda p: (
        p.add_argument("--files", type=int, default=200), p.add_argument("--rows", type=int, default=5000),
        p.add_argument("--mbs", type=int, default=1, help="files per mini-batch"),
        p.add_argument("--reps", type=int, default=3), p.add_argument("--workers", type=int, default=0)))
    if args.quick:
        args.files, args.rows, args.reps = 20, 1000, 1
    cores = args.workers or os.cpu_count() or 1
    root = Path(tempfile.mkdtemp(prefix="openaml-bench-batch-"))
    progress(f"generating {args.files} files x {args.rows} rows in {root}")
    data, model = make_data(root, args.files, args.rows)
    src = root / "src"
    src.mkdir()
    (src / "score.py").write_text(textwrap.dedent(SCORE).lstrip())
    noop = root / "noop"
    noop.mkdir()
    (noop / "score.py").write_text(textwrap.dedent(NOOP).lstrip())
    total_rows = args.files * args.rows
    limit: list[float] = []
    engine: list[float] = []
    e2e: list[float] = []
    overhead: list[float] = []
    fresh: list[tuple[float, float]] = []
    forked: list[tuple[float, float]] = []
    by_endpoint: dict[str, list[tuple[float, float]]] = {"score": [], "nocode": []}
    small = root / "small"  # the engine's start A/B: 8 of the files, one per mini-batch
    small.mkdir()
    for f in sorted(data.iterdir())[:8]:
        os.link(f, small / f.name)
    engine_start(small, model, src, cores, fork=True)  # learns init()'s imports (a warm start after it)
    for rep in range(max(3, args.reps)):
        for fork in ((False, True) if rep % 2 == 0 else (True, False)):
            (forked if fork else fresh).append(engine_start(small, model, src, cores, fork))
    progress(f"engine start: fresh workers {median([x[0] for x in fresh]):.2f} s, forked from the zygote "
             f"{median([x[0] for x in forked]):.2f} s")
    with openaml_server("batch") as server:
        from openaml import MLClient
        from openaml.entities import Data

        with MLClient(workspace=server.url) as ml:
            asset = ml.data.create_or_update(Data(name="bench-passengers", path=str(data), type="uri_folder"))
            small_asset = ml.data.create_or_update(Data(name="bench-passengers-8", path=str(small), type="uri_folder"))
        ref = f"azureml:bench-passengers:{asset.version}"
        mlflow_model = root / "mlflow-model"
        _save_mlflow(model, mlflow_model, data)
        with MLClient(workspace=server.url) as ml:
            endpoint_deployments(ml, src, model, mlflow_model, cores)
            # a deployment in use: one invocation each, then their warm pools (started after a first job)
            before = set((server.path / "pools").glob("*/ready"))
            for dep in ("score", "nocode"):
                endpoint_rows(server, ml, "bench-rows", dep, f"azureml:bench-passengers-8:{small_asset.version}")
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and len(set((server.path / "pools").glob("*/ready")) - before) < 2:
                time.sleep(0.2)
        progress("warm-up job (environment layer, code snapshot)")
        run_parallel(server, noop, ref, model, mbs=max(1, args.files // 4), workers=1, tag="warmup")
        starts_by = deployment_starts(server, src, model, f"azureml:bench-passengers-8:{small_asset.version}",
                                      cores, max(1, args.reps))
        for rep in range(args.reps):
            order = (["limit", "job", "score", "nocode", "noop"] if rep % 2 == 0
                     else ["noop", "nocode", "score", "job", "limit"])
            for what in order:
                if what == "limit":
                    limit.append(limit_rows_per_s(data, model, cores))
                    progress(f"rep {rep}: limit {limit[-1]:.0f} rows/s")
                elif what == "job":
                    r = run_parallel(server, src, ref, model, mbs=args.mbs, workers=cores, tag=f"score{rep}")
                    assert r["items"] == args.files, r
                    engine.append(total_rows / r["elapsed_engine"])
                    e2e.append(total_rows / r["end_to_end"])
                    progress(f"rep {rep}: job {engine[-1]:.0f} rows/s (engine), {e2e[-1]:.0f} end to end, "
                             f"start {r['start']:.2f} s")
                elif what in ("score", "nocode"):
                    with MLClient(workspace=server.url) as ml:
                        eng, whole, n = endpoint_rows(server, ml, "bench-rows", what, ref)
                    assert n == args.files, (what, n, args.files)
                    by_endpoint[what].append((total_rows / eng, total_rows / whole))
                    progress(f"rep {rep}: batch endpoint, {what}: {total_rows / eng:.0f} rows/s (engine), "
                             f"{total_rows / whole:.0f} end to end")
                else:
                    r = run_parallel(server, noop, ref, model, mbs=1, workers=1, tag=f"noop{rep}")
                    overhead.append(1000 * (r["elapsed_engine"] - r["ready"]) / r["mini_batches"])
                    progress(f"rep {rep}: no-op {overhead[-1]:.1f} ms per mini-batch")
    ray = ray_rows_per_s(data, model, cores)
    lim = median(limit)
    rows = [
        Row("rows/s, parallel job (engine: driver start to end)", median(engine), lim, median(engine) / lim,
            ">= 0.9x limit", lim, median(engine) / lim >= 0.9),
        Row("rows/s, parallel job (end to end: submit to Completed)", median(e2e), lim, median(e2e) / lim, "", lim),
        *(Row(f"rows/s, batch endpoint in use (warm pool), {label} (engine: driver start to end)",
              median([x[0] for x in by_endpoint[k]]),
              lim, median([x[0] for x in by_endpoint[k]]) / lim, ">= 0.9x limit", lim,
              median([x[0] for x in by_endpoint[k]]) / lim >= 0.9)
          for k, label in (("score", "score.py deployment"), ("nocode", "MLflow no-code deployment"))),
        *(Row(f"rows/s, batch endpoint in use, {label} (end to end: invoke to Completed)",
              median([x[1] for x in by_endpoint[k]]), lim, median([x[1] for x in by_endpoint[k]]) / lim, "", lim)
          for k, label in (("score", "score.py"), ("nocode", "MLflow no-code"))),
        Row("per-mini-batch overhead, ms (no-op run, 1 worker)", median(overhead), None, None, "< 20 ms", None,
            median(overhead) < 20),
        Row("job start, s, COLD: a deployment's first invoke to first mini-batch scored", median(starts_by["cold"])),
        Row("  of which the workers' own start, s (imports, init(): user code)", median(starts_by["cold_ready"])),
        Row("job start, s, WARM environment: a later invoke (deployment's warm pool)", median(starts_by["warm"]),
            None, None, "< 2 s", None, median(starts_by["warm"]) < 2),
        Row("  of which the workers' own start, s (fork from the pool, entry script, init())",
            median(starts_by["warm_ready"])),
        Row("  the rest: invoke, queue, runner, environment layer, driver, first run(), s",
            median(starts_by["warm"]) - median(starts_by["warm_ready"])),
        Row("engine start, s: first worker ready (zygote; peer: fresh worker processes)",
            median([x[0] for x in forked]), median([x[0] for x in fresh]),
            median([x[0] for x in forked]) / median([x[0] for x in fresh])),
        Row("engine start, CPU s of the engine's processes (zygote; peer: fresh processes)",
            median([x[1] for x in forked]), median([x[1] for x in fresh]),
            median([x[1] for x in forked]) / median([x[1] for x in fresh])),
    ]
    notes = [f"{args.files} files x {args.rows} rows, mini_batch_size {args.mbs}, {cores} workers, "
             f"{args.reps} repetitions (medians)"]
    if ray is not None:
        rows.append(Row("rows/s, Ray Data map_batches (local Ray, same cores; peer)", ray, lim, ray / lim,
                        "job ahead", lim, min(median(engine), *(median([x[0] for x in v]) for v in by_endpoint.values()))
                        > ray))
    else:
        notes.append("Ray Data: not measured (ray is not installed here; pip install 'ray[data]' to compare)")
    print_table("Batch scoring: parallel job vs plain Python (one process per core)", rows,
                peer="the limit: plain Python multiprocessing, one process per core", limit="same", notes=notes)
    if not args.no_save:
        save_results("batch", {"rows": rows, "limit": limit, "engine": engine, "e2e": e2e, "start": starts_by,
                               "engine_start_fresh": fresh, "engine_start_forked": forked,
                               "overhead_ms": overhead, "ray": ray, "endpoint": by_endpoint, "args": vars(args)})
    print(json.dumps({"ok": True}), file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--limit-run"]:
        _limit_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        main()
