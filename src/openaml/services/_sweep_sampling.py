"""Samplers of a sweep: Azure ML's search space mapped onto an Optuna study (ask/tell).

Each Azure distribution is an Optuna distribution over an *underlying* variable plus a transform
(``quniform`` = round(uniform / q) * q, ``loguniform`` = a log-scaled float on [exp(min), exp(max)],
``normal`` = mu + sigma * Phi^-1(u) with u uniform on (0, 1), ...). Optuna sees only underlying
values, so its models stay continuous; trials receive the transformed values.

Grid sampling enumerates the choice product in a fixed order (trial ``i`` gets point ``i``), so a
restarted server continues where it stopped without asking anyone what was visited.
The study is in memory; after a restart it is rebuilt by re-telling finished trials.

Bayesian sampling uses Optuna's GPSampler (a Gaussian process, Matern 5/2 kernel with ARD, log
expected improvement; q-batch log EI over the trials still running) when PyTorch is importable:
it found better points than TPE on the search-quality benchmark (bench/sweep_quality.py). torch is
an optional install (``bash scripts/install.sh --with-torch``); it is imported only when a
bayesian sweep samples, with one intra-op thread and BLAS limited to one thread while it fits,
so the server stays responsive. Without torch, bayesian falls back to Optuna's multivariate TPE
(constant liar for running trials) and says so in :attr:`SweepSampler.notes`, which the
controller writes to the sweep's log.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import threading
from collections.abc import Iterator
from statistics import NormalDist
from typing import Any, Literal

from openaml.entities._sweep import SweepJob, grid_points, log_base
from openaml.entities._sweep_space import LogNormal, Normal, QNormal

__all__ = ["SweepSampler", "torch_available", "bayesian_sampler_name"]

TORCH_HINT = ("install PyTorch (CPU build) into the server's environment for Gaussian-process bayesian "
              "sampling: `bash scripts/install.sh --with-torch`, or `python -m pip install torch`")
_torch_lock = threading.Lock()
_torch_ready = False


def torch_available() -> bool:
    """True when PyTorch can be imported (checked without importing it)."""
    return importlib.util.find_spec("torch") is not None


def bayesian_sampler_name() -> str:
    """What a bayesian sweep uses on this server: ``"GPSampler"`` (torch present) or ``"TPESampler"``."""
    return "GPSampler" if torch_available() else "TPESampler"


def _prepare_torch() -> None:
    """Import torch once, with one intra-op and one inter-op thread (the server shares its cores)."""
    global _torch_ready
    with _torch_lock:
        if _torch_ready:
            return
        import torch

        torch.set_num_threads(1)
        with contextlib.suppress(RuntimeError):  # inter-op threads are fixed once torch has run work
            torch.set_num_interop_threads(1)
        _torch_ready = True


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        yield
        return
    with threadpool_limits(limits=1):
        yield

_EPS = 1e-6
_PLAIN = (str, int, float, bool, type(None))


def _round_q(x: float, q: float) -> float:
    v = round(x / q) * q
    # keep integral steps integral and tidy float noise (0.30000000000000004 -> 0.3)
    if float(q).is_integer() and float(v).is_integer():
        return int(v)
    return float(f"{v:.12g}")


def _indexed_qmc(seed: int | None) -> Any:
    """Optuna's QMCSampler (scrambled Sobol) whose point number is the trial's index.

    Optuna counts the points it handed out in the study; a study rebuilt after a server restart
    would start the (seeded, so identical) sequence again and repeat points. Tying point ``i - 1``
    to trial ``i`` (trial 0 is drawn at random while Optuna learns the space) keeps the sequence
    going across restarts and with trials in flight.
    """
    import optuna

    class IndexedQMCSampler(optuna.samplers.QMCSampler):
        next_id = 0

        def _find_sample_id(self, study: Any, search_space: Any) -> int:
            return self.next_id

    return IndexedQMCSampler(qmc_type="sobol", seed=seed, scramble=True, warn_independent_sampling=False,
                             warn_asynchronous_seeding=False)


class SweepSampler:
    """Suggests trial parameters for one sweep.

    ``suggest()`` returns ``(number, values, raw)``: ``values`` what the trial gets, ``raw`` the
    underlying values Optuna chose (stored with the trial so a restart can re-tell it).
    """

    def __init__(self, job: SweepJob) -> None:
        import warnings

        import optuna

        optuna.logging.set_verbosity(logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.job = job
        self.notes: list[str] = []  # warnings for the sweep's log (e.g. the bayesian fallback)
        self.sampler_name = ""
        self.space = job.search_space
        algo = job.sampling_algorithm
        self.kind = algo.type
        self.base = log_base(algo)  # e unless the random algorithm's logbase says otherwise
        self.grid = grid_points(self.space) if self.kind == "grid" else None
        direction: Literal["minimize", "maximize"] = (
            "maximize" if job.objective and job.objective.goal == "maximize" else "minimize")
        seed = getattr(algo, "seed", None)
        if self.kind == "random" and getattr(algo, "rule", None) == "sobol":
            sampler: Any = _indexed_qmc(seed)
        elif self.kind == "bayesian":
            sampler = self._bayesian(seed)
        else:
            sampler = optuna.samplers.RandomSampler(seed=seed)
        self.sampler_name = self.sampler_name or type(sampler).__name__.removeprefix("Indexed")
        if self.grid is not None:
            self.sampler_name = "grid"
        self.study = optuna.create_study(direction=direction, sampler=sampler)
        self.log_lines = [f"sampling: {self.describe(seed)}", *(f"WARNING: {n}" for n in self.notes)]
        self.dists = self._optuna_distributions()
        self._pending: dict[int, Any] = {}  # trial index -> optuna Trial still running (asked here)

    def describe(self, seed: int | None) -> str:
        """One line for the sweep's log: the algorithm, the Optuna sampler behind it and the seed."""
        rule = getattr(self.job.sampling_algorithm, "rule", None)
        algo = f"{self.kind} (rule {rule})" if rule else self.kind
        if self.grid is not None:
            return f"grid: {len(self.grid)} points, in order"
        extra = f", {self._startup()} random startup trials" if self.kind == "bayesian" else ""
        return f"{algo} with Optuna {self.sampler_name} (seed {seed if seed is not None else 'none'}{extra})"

    def _startup(self) -> int:
        """Random trials before the model: Optuna's default 10, at most half the budget (at least 4).

        Measured (bench/sweep_quality.py, Hartmann 4-D, 20 trials, 5 seeds): 5 startup trials gave
        regret 0.265 +- 0.231 against 0.154 +- 0.160 with 10, so the default stays from 20 trials up.
        """
        return min(10, max(4, self._budget() // 2))

    def _bayesian(self, seed: int | None) -> Any:
        import optuna

        if torch_available():
            self.sampler_name = "GPSampler"
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self._startup(),
                                             deterministic_objective=False, warn_independent_sampling=False)
        self.sampler_name = "TPESampler"
        self.notes.append("bayesian sampling: PyTorch is not installed, so this sweep uses Optuna's TPE "
                          "(multivariate, constant liar) instead of its Gaussian-process sampler, which found "
                          "better points in bench/sweep_quality.py; " + TORCH_HINT)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self._startup(), multivariate=True,
                                          group=False, constant_liar=True)

    def _budget(self) -> int:
        lim = self.job.limits
        return int(lim.max_total_trials) if lim and lim.max_total_trials else 20

    @property
    def size(self) -> int | None:
        """Number of distinct points (grid only), else None (infinite)."""
        return len(self.grid) if self.grid is not None else None

    def _optuna_distributions(self) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out: dict[str, Any] = {}
        self._indexed: set[str] = set()
        for name, d in self.space.items():
            if d.type == "choice":
                vals = d.values
                if all(isinstance(v, _PLAIN) for v in vals) and len({repr(v) for v in vals}) == len(vals):
                    out[name] = CategoricalDistribution(vals)
                else:  # dicts or duplicates: choose an index
                    out[name] = CategoricalDistribution(list(range(len(vals))))
                    self._indexed.add(name)
            elif d.type == "randint":
                out[name] = IntDistribution(0, max(0, d.upper - 1))
            elif d.type in ("uniform", "quniform"):
                out[name] = FloatDistribution(d.min_value, d.max_value)
            elif d.type in ("loguniform", "qloguniform"):
                out[name] = FloatDistribution(self.base ** d.min_value, self.base ** d.max_value, log=True)
            else:  # normal family: the quantile u
                out[name] = FloatDistribution(_EPS, 1 - _EPS)
        return out

    def transform(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Underlying values -> the values a trial receives."""
        values: dict[str, Any] = {}
        for name, d in self.space.items():
            x = raw[name]
            if d.type == "choice":
                if name in self._indexed:
                    x = d.values[int(x)]
                values[name] = x
            elif d.type == "randint":
                values[name] = int(x)
            elif d.type == "uniform":
                values[name] = float(x)
            elif d.type == "loguniform":
                values[name] = float(x)
            elif d.type in ("quniform", "qloguniform"):
                values[name] = _round_q(float(x), d.q)
            else:
                assert isinstance(d, (Normal, QNormal, LogNormal)), d  # the normal family is what is left
                z = d.mu + d.sigma * NormalDist().inv_cdf(float(x))
                if d.type in ("lognormal", "qlognormal"):
                    z = self.base ** z
                if d.type in ("qnormal", "qlognormal"):
                    z = _round_q(z, d.q)
                values[name] = z
        return values

    def suggest(self, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(values, raw) for trial ``index`` (0-based)."""
        if self.grid is not None:
            point = self.grid[index % len(self.grid)]
            return dict(point), {"grid_index": index}
        if hasattr(self.study.sampler, "next_id"):  # sobol: point index - 1 for trial index
            self.study.sampler.next_id = max(0, index - 1)
        if self.sampler_name == "GPSampler":
            _prepare_torch()
            with _one_blas_thread():
                trial = self.study.ask(self.dists)
        else:
            trial = self.study.ask(self.dists)
        self._pending[index] = trial
        raw = dict(trial.params)
        return self.transform(raw), raw

    def tell(self, index: int, raw: dict[str, Any], value: float | None, *, pruned: bool = False,
             intermediate: list[tuple[int, float]] | None = None) -> None:
        """Report a finished trial: ``value`` None means failed (no usable metric)."""
        if self.grid is not None:
            return
        from optuna.trial import TrialState, create_trial

        if value is not None and not math.isfinite(value):
            value = None
        state = TrialState.PRUNED if pruned and value is not None else (
            TrialState.COMPLETE if value is not None else TrialState.FAIL)
        trial = self._pending.pop(index, None)
        if trial is not None:
            try:
                if state == TrialState.PRUNED:
                    assert value is not None  # PRUNED only with a value (above)
                    for step, v in intermediate or [(0, value)]:
                        trial.report(v, step)
                    self.study.tell(trial, state=TrialState.PRUNED)
                elif state == TrialState.COMPLETE:
                    self.study.tell(trial, value)
                else:
                    self.study.tell(trial, state=TrialState.FAIL)
            except Exception:  # noqa: BLE001 - a told trial: nothing more to learn from it
                pass
            return
        try:  # trial asked by a previous server: re-add it as finished
            params = {k: raw[k] for k in self.dists if k in raw}
            if len(params) != len(self.dists):
                return
            inter = {int(s): float(v) for s, v in (intermediate or []) if math.isfinite(v)}
            self.study.add_trial(create_trial(
                params=params, distributions=self.dists,
                value=value if state == TrialState.COMPLETE else None, state=state,
                intermediate_values=inter if state == TrialState.PRUNED else ({} if value is None else inter)))
        except Exception:  # noqa: BLE001 - a raw record that no longer fits the space
            pass
