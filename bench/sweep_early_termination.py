"""Early termination of a sweep: rounds saved and best AUC kept, openaml's policies vs Optuna's pruners.

Issue 4's benchmark: LightGBM on bank marketing (/work/shared/data/bank-marketing), 30 trials x 300
boosting rounds, validation AUC reported every 10 rounds (30 intervals). For each policy: total
boosting rounds run (% of running every trial to the end) and the best AUC the sweep reports.

How (a replay, see bench/README.md for why it is equivalent):

1. The 30 configurations are drawn once, up front (numpy, ``--seed``), and each is trained once to
   300 rounds, recording its validation AUC every 10 rounds and the wall time of each 10 rounds.
2. A discrete-event replay runs the sweep: trials start in order, ``max_concurrent_trials`` at a
   time; each report arrives at the trial's start time + its recorded cumulative time; at each report
   the policy decides; a canceled trial frees its slot for the next one at that instant.
3. openaml's policies decide through ``openaml.services._sweep_policies.evaluate_policy``, the function
   the sweep controller calls (same histories, same running set, same per-trial evaluated counter).
   Optuna's pruners decide through a real in-memory study (``ask`` in the same order,
   ``trial.report(auc, step=round)``, ``trial.should_prune()``, ``tell``).
4. One real sweep (``--e2e``, on by default) runs through an openaml server with the example's trial
   script (examples/lightgbm-learning-curve/src/train.py), 6 trials x 60 rounds, one at a time, with
   the hyperband policy; the trials it canceled are compared with what the replay of the same six
   configurations (trained here to 60 rounds) predicts.

The best AUC of a sweep is the controller's rule: the best last-reported value over all trials
(canceled ones included; for Optuna, ``study.best_value``, completed trials only).

Run: ``.venv/bin/python bench/sweep_early_termination.py [--quick] [--seed 0] [--no-e2e]``.
"""

from __future__ import annotations

import heapq
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    REPO,
    RESULTS,
    Row,
    openaml_server,
    parse_args,
    print_table,
    progress,
    save_results,
)

DATA = REPO.parent / "shared" / "data" / "bank-marketing"
if not DATA.exists():
    DATA = Path("/work/shared/data/bank-marketing")
ROUNDS, EVERY, TRIALS = 300, 10, 30
ANCHORS = "Optuna HyperbandPruner: best 0.9474 with 34 % of rounds; MedianPruner: 42 % for -0.0005 AUC"


# ---------------------------------------------------------------------------------- data, configurations
def load_data() -> tuple[Any, Any, Any, Any]:
    import pandas as pd

    train = pd.read_csv(DATA / "train.csv")
    valid = pd.read_csv(DATA / "valid.csv")
    cats = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c]) and c != "y"]
    for c in cats:
        kinds = pd.CategoricalDtype(sorted(set(train[c]) | set(valid[c])))
        train[c] = train[c].astype(kinds)
        valid[c] = valid[c].astype(kinds)
    return (train.drop(columns="y"), (train["y"] == "yes").astype(int),
            valid.drop(columns="y"), (valid["y"] == "yes").astype(int))


def configurations(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` LightGBM configurations drawn up front (the same for every policy and peer)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        out.append({
            "learning_rate": round(float(math.exp(rng.uniform(math.log(0.005), math.log(0.3)))), 5),
            "num_leaves": int(rng.integers(4, 128)),
            "min_child_samples": int(rng.integers(5, 200)),
            "feature_fraction": round(float(rng.uniform(0.3, 1.0)), 3),
            "bagging_fraction": round(float(rng.uniform(0.4, 1.0)), 3),
            "lambda_l2": round(float(math.exp(rng.uniform(math.log(1e-3), math.log(10.0)))), 5),
        })
    return out


def train_curve(cfg: dict[str, Any], data: tuple[Any, ...], rounds: int, every: int) -> dict[str, Any]:
    """Train one configuration; AUC on valid (LightGBM's own metric) and the seconds of each ``every`` rounds."""
    import lightgbm as lgb

    xt, yt, xv, yv = data
    params = {"objective": "binary", "metric": "auc", "verbose": -1, "seed": 0, "num_threads": 1,
              "bagging_freq": 1, **cfg}
    dtrain = lgb.Dataset(xt, yt)
    dvalid = lgb.Dataset(xv, yv, reference=dtrain)
    aucs: list[float] = []
    secs: list[float] = []
    t0 = time.perf_counter()

    def cb(env: Any) -> None:
        nonlocal t0
        if (env.iteration + 1) % every == 0:
            aucs.append(float(env.evaluation_result_list[0][2]))
            now = time.perf_counter()
            secs.append(now - t0)
            t0 = now

    lgb.train(params, dtrain, num_boost_round=rounds, valid_sets=[dvalid], valid_names=["valid"], callbacks=[cb])
    return {"params": cfg, "auc": aucs, "secs": secs}


def curves(seed: int, n: int, rounds: int, every: int, data: Any) -> list[dict[str, Any]]:
    cache = RESULTS / f"sweep_et_curves-s{seed}-n{n}-r{rounds}-e{every}.json"
    if cache.exists():
        progress(f"learning curves from {cache}")
        return json.loads(cache.read_text())
    out = []
    for i, cfg in enumerate(configurations(n, seed)):
        out.append(train_curve(cfg, data, rounds, every))
        progress(f"trained {i + 1}/{n}: final AUC {out[-1]['auc'][-1]:.4f} in {sum(out[-1]['secs']):.1f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out))
    return out


# ---------------------------------------------------------------------------------- the replay
class OursBackend:
    """Decisions by the controller's own function, with the controller's state (``evaluated``)."""

    def __init__(self, policy: Any) -> None:
        from openaml.services._sweep_policies import evaluate_policy

        self.policy = policy
        self.evaluate = evaluate_policy
        self.evaluated: dict[str, int] = {}

    def start(self, i: int) -> None:
        pass

    def report(self, i: int, hist: dict[str, list[float]], running: list[str]) -> set[int]:
        if self.policy is None:
            return set()
        out = self.evaluate(self.policy, "maximize", hist, running, self.evaluated)
        return {int(t[1:]) for t in out}

    def end(self, i: int, value: float, pruned: bool) -> None:
        pass

    def best(self, finals: dict[int, float], pruned: set[int]) -> float:
        return max(finals.values())


class OptunaBackend:
    def __init__(self, pruner: Any, every: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.study = optuna.create_study(study_name="bench-et", direction="maximize", pruner=pruner,
                                         sampler=optuna.samplers.RandomSampler(seed=0))
        self.trials: dict[int, Any] = {}
        self.every = every

    def start(self, i: int) -> None:
        self.trials[i] = self.study.ask()

    def report(self, i: int, hist: dict[str, list[float]], running: list[str]) -> set[int]:
        h = hist[f"t{i}"]
        t = self.trials[i]
        t.report(h[-1], step=len(h) * self.every)
        return {i} if t.should_prune() else set()

    def end(self, i: int, value: float, pruned: bool) -> None:
        state = self.optuna.trial.TrialState.PRUNED if pruned else self.optuna.trial.TrialState.COMPLETE
        self.study.tell(self.trials[i], None if pruned else value, state=state)

    def best(self, finals: dict[int, float], pruned: set[int]) -> float:
        return float(self.study.best_value)


def replay(curves_: list[dict[str, Any]], backend: Any, concurrency: int) -> dict[str, Any]:
    """Run the sweep as the controller would, on recorded curves. Returns reports run per trial,
    the trials canceled, and the best AUC."""
    n = len(curves_)
    cum = [list(itertools_accumulate(c["secs"])) for c in curves_]
    hist: dict[str, list[float]] = {}
    done_reports = [0] * n
    pruned: set[int] = set()
    running: set[int] = set()
    events: list[tuple[float, int, int, int]] = []  # (time, seq, trial, report index 0-based)
    start = [0.0] * n
    seq = 0
    nxt = 0

    def launch(now: float) -> None:
        nonlocal nxt, seq
        while nxt < n and len(running) < concurrency:
            i = nxt
            nxt += 1
            hist[f"t{i}"] = []
            start[i] = now
            running.add(i)
            backend.start(i)
            heapq.heappush(events, (now + cum[i][0], seq, i, 0))
            seq += 1

    launch(0.0)
    while events:
        now, _, i, j = heapq.heappop(events)
        if i not in running:
            continue
        hist[f"t{i}"].append(curves_[i]["auc"][j])
        done_reports[i] = j + 1
        stop = backend.report(i, hist, [f"t{r}" for r in sorted(running)])
        ended = []
        for s in sorted(stop):
            running.discard(s)
            pruned.add(s)
            ended.append(s)
            backend.end(s, hist[f"t{s}"][-1], True)
        if i in running and j + 1 == len(curves_[i]["auc"]):
            running.discard(i)
            backend.end(i, hist[f"t{i}"][-1], False)
            ended.append(i)
        elif i in running:
            heapq.heappush(events, (start[i] + cum[i][j + 1], seq, i, j + 1))
            seq += 1
        if ended:
            launch(now)
    finals = {i: hist[f"t{i}"][-1] for i in range(n)}
    completed = max((v for i, v in finals.items() if i not in pruned), default=math.nan)
    return {"reports": done_reports, "pruned": sorted(pruned), "best": backend.best(finals, pruned),
            "best_completed": completed}


def itertools_accumulate(xs: list[float]) -> list[float]:
    out, s = [], 0.0
    for x in xs:
        s += x
        out.append(s)
    return out


# ---------------------------------------------------------------------------------- policies compared
def policies(reports: int) -> list[tuple[str, str, Any]]:
    """(name, settings, factory) of every policy replayed; factory() -> backend."""
    import optuna

    from openaml.sweep import BanditPolicy, HyperbandPolicy, MedianStoppingPolicy, TruncationSelectionPolicy

    def ours(p: Any) -> Any:
        return lambda: OursBackend(p)

    def opt(p: Any) -> Any:
        return lambda: OptunaBackend(p(), EVERY)

    return [
        ("no policy", "", ours(None)),
        ("bandit", "slack_factor 0.1, interval 1, delay 5 (Azure docs)",
         ours(BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=5))),
        ("bandit", "slack_amount 0.003, interval 1, delay 5",
         ours(BanditPolicy(slack_amount=0.003, evaluation_interval=1, delay_evaluation=5))),
        ("bandit", "slack_amount 0.003, interval 1, delay 10",
         ours(BanditPolicy(slack_amount=0.003, evaluation_interval=1, delay_evaluation=10))),
        ("median_stopping", "interval 1, delay 5 (Azure docs)",
         ours(MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=5))),
        ("median_stopping", "interval 1, delay 1",
         ours(MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=1))),
        ("median_stopping", "interval 1, delay 3",
         ours(MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=3))),
        ("median_stopping", "interval 2, delay 10",
         ours(MedianStoppingPolicy(evaluation_interval=2, delay_evaluation=10))),
        ("truncation_selection", "20 %, interval 1, delay 5 (Azure docs)",
         ours(TruncationSelectionPolicy(truncation_percentage=20, evaluation_interval=1, delay_evaluation=5))),
        ("truncation_selection", "50 %, interval 1, delay 5",
         ours(TruncationSelectionPolicy(truncation_percentage=50, evaluation_interval=1, delay_evaluation=5))),
        ("truncation_selection", "30 %, interval 1, delay 10",
         ours(TruncationSelectionPolicy(truncation_percentage=30, evaluation_interval=1, delay_evaluation=10))),
        ("truncation_selection", "50 %, interval 2, delay 10",
         ours(TruncationSelectionPolicy(truncation_percentage=50, evaluation_interval=2, delay_evaluation=10))),
        ("hyperband (openaml)", f"min_resource 1, max_resource {reports}, reduction_factor 3",
         ours(HyperbandPolicy(min_resource=1, max_resource=reports, reduction_factor=3))),
        ("hyperband (openaml)", f"min_resource 2, max_resource {reports}, reduction_factor 4",
         ours(HyperbandPolicy(min_resource=2, max_resource=reports, reduction_factor=4))),
        ("hyperband (openaml)", f"min_resource 4, max_resource {reports}, reduction_factor 4",
         ours(HyperbandPolicy(min_resource=4, max_resource=reports, reduction_factor=4))),
        ("hyperband (openaml)", f"brackets 1 (ASHA), min_resource 1, max_resource {reports}, reduction_factor 3",
         ours(HyperbandPolicy(min_resource=1, max_resource=reports, reduction_factor=3, brackets=1))),
        ("optuna HyperbandPruner", f"min_resource {EVERY}, max_resource {reports * EVERY}, reduction_factor 3",
         opt(lambda: optuna.pruners.HyperbandPruner(min_resource=EVERY, max_resource=reports * EVERY,
                                                    reduction_factor=3))),
        ("optuna HyperbandPruner", f"min_resource {2 * EVERY}, max_resource {reports * EVERY}, reduction_factor 4",
         opt(lambda: optuna.pruners.HyperbandPruner(min_resource=2 * EVERY, max_resource=reports * EVERY,
                                                    reduction_factor=4))),
        ("optuna HyperbandPruner", f"min_resource {4 * EVERY}, max_resource {reports * EVERY}, reduction_factor 4",
         opt(lambda: optuna.pruners.HyperbandPruner(min_resource=4 * EVERY, max_resource=reports * EVERY,
                                                    reduction_factor=4))),
        ("optuna MedianPruner", "defaults (n_startup_trials 5)", opt(lambda: optuna.pruners.MedianPruner())),
    ]


# ---------------------------------------------------------------------------------- the real sweep
E2E_TRIALS, E2E_ROUNDS = 6, 60


def real_sweep(seed: int) -> dict[str, Any]:
    """The example's sweep (examples/lightgbm-learning-curve/sweep-job.yml), cut to 6 trials x 60
    rounds, one at a time, with hyperband(min_resource 1, max_resource 6, reduction_factor 3),
    through a real server; then the six sampled configurations are trained here to 60 rounds and
    replayed through the same policy: the trials each canceled, side by side."""
    from openaml import MLClient, load_job
    from openaml.sweep import HyperbandPolicy

    example = REPO / "examples" / "lightgbm-learning-curve"
    policy = HyperbandPolicy(min_resource=1, max_resource=E2E_ROUNDS // EVERY, reduction_factor=3)
    with openaml_server("sweep-et") as srv:
        ml = MLClient(workspace=srv.url)
        job = load_job(example / "sweep-job.yml")
        job.trial.command = job.trial.command.replace("--rounds 300", f"--rounds {E2E_ROUNDS}")
        job.early_termination = policy
        job.set_limits(max_total_trials=E2E_TRIALS, max_concurrent_trials=1)
        t0 = time.monotonic()
        created = ml.jobs.create_or_update(job)
        while ml.jobs.get_raw(created.name)["status"] not in ("Completed", "Failed", "Canceled"):
            time.sleep(1)
        raw = ml.jobs.get_raw(created.name)
        wall = time.monotonic() - t0
        trials = sorted(raw.get("trials") or [], key=lambda t: t["index"])
        from mlflow.tracking import MlflowClient

        mc = MlflowClient(tracking_uri=srv.url + "/mlflow")
        reports = [len(mc.get_metric_history(t["name"], "AUC")) for t in trials]
    real_pruned = [t["index"] for t in trials if t["status"] == "Canceled" and t.get("terminated")]
    data = load_data()
    curves_ = [train_curve(dict(t["params"]), data, E2E_ROUNDS, EVERY) for t in trials]
    predicted = replay(curves_, OursBackend(policy), 1)
    return {"status": raw["status"], "error": raw.get("error"), "wall_s": wall, "real_pruned": real_pruned,
            "real_reports": reports, "predicted_pruned": predicted["pruned"],
            "predicted_reports": predicted["reports"], "best_child_run_id": raw.get("best_child_run_id"),
            "reasons": [t.get("terminated") for t in trials], "params": [t["params"] for t in trials]}


# ---------------------------------------------------------------------------------- main
def main() -> None:
    args = parse_args(__doc__.splitlines()[0], lambda p: (
        p.add_argument("--seed", type=int, nargs="+", default=[0, 1], help="configuration draws (one table block each)"),
        p.add_argument("--no-e2e", action="store_true", help="skip the real sweep through a server"),
        p.add_argument("--concurrency", type=int, nargs="+", default=[2], help="max_concurrent_trials replayed")))
    n, rounds = (10, 120) if args.quick else (TRIALS, ROUNDS)
    reports = rounds // EVERY
    data = load_data()
    full = n * rounds
    rows: list[Row] = []
    results: list[dict[str, Any]] = []
    best_anywhere = []
    for seed in args.seed:
        cv = curves(seed, n, rounds, EVERY, data)
        best_anywhere.append(max(max(c["auc"]) for c in cv))
        for conc in args.concurrency:
            base = math.nan
            for name, settings, factory in policies(reports):
                r = replay(cv, factory(), conc)
                run = sum(r["reports"]) * EVERY
                pct = 100.0 * run / full
                if name == "no policy":
                    base = r["best"]
                delta = r["best"] - base
                target, ok = "", None
                if name in ("bandit", "median_stopping", "truncation_selection"):
                    target, ok = "<= 50 %, within 0.001", pct <= 50 and delta >= -0.001
                elif name.startswith("hyperband"):
                    target, ok = "<= 35 %, same best", pct <= 35 and delta >= -1e-9
                label = f"s{seed} c{conc} {name}" + (f" [{settings}]" if settings else "")
                rows.append(Row(label, f"{pct:.0f} % / {r['best']:.4f}", None, f"{delta:+.4f}", target, None, ok,
                                extra={"rounds": run, "pruned": r["pruned"]}))
                results.append({"seed": seed, "concurrency": conc, "policy": name, "settings": settings,
                                "rounds": run, "rounds_pct": pct, "best_auc": r["best"],
                                "best_auc_completed": r["best_completed"], "delta_best": delta,
                                "pruned": r["pruned"], "reports": r["reports"]})
                progress(f"s{seed} c{conc} {name} {settings}: {pct:.1f} % of rounds, best {r['best']:.4f} "
                         f"({delta:+.4f}; completed only {r['best_completed']:.4f})")
    e2e = None
    if not args.no_e2e:
        progress("real sweep through a server (6 trials x 60 rounds, hyperband) ...")
        e2e = real_sweep(args.seed[0])
        same = e2e["real_pruned"] == e2e["predicted_pruned"]
        rows.append(Row("real sweep via server (6 x 60 rounds, hyperband 1/6/3): canceled trials | replay",
                        f"{e2e['real_pruned']}", f"{e2e['predicted_pruned']}", None, "same trials", None, same,
                        extra=e2e))
    print_table(f"Early termination: LightGBM, bank marketing, {n} trials x {rounds} rounds, AUC every {EVERY} "
                f"rounds (replay; column openaml = rounds run as % of no policy / best AUC; ratio = best - no "
                f"policy's best)", rows,
                peer="Optuna pruners on the same configurations, same trial order (rows 'optuna ...')",
                limit=f"no policy: {full} rounds per seed; best AUC anywhere on any curve "
                      f"{', '.join(f'{b:.4f}' for b in best_anywhere)}",
                notes=[f"anchors (issue 4, other configurations): {ANCHORS}",
                       "s = seed of the 30 configurations; c = max_concurrent_trials in the replay",
                       "best = the controller's rule (last value of any trial, canceled ones too); Optuna: best_value "
                       "(completed trials); the JSON has both rules for openaml"])
    if not args.no_save:
        save_results("sweep_early_termination", {"seeds": args.seed, "trials": n, "rounds": rounds, "every": EVERY,
                                                 "results": results, "e2e": e2e})


if __name__ == "__main__":
    main()
