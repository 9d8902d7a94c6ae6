"""The AutoML search (server side): which learner and hyperparameters the next trial runs.

FLAML is the engine, in two phases:

1. one trial per learner, in FLAML's priority order (LightGBM, random forest, extra trees,
   XGBoost, the linear model, ...), each at FLAML's low-cost starting point (the learner's
   ``init_value``: a few small trees; seconds even on large data), as FLAML starts;
2. the learners refined: two thirds of the time go to the learner with the best score so far, one
   third to the second best (as FLAML's learner selection weighs score and cost, without its
   per-learner cost model). A
   learner's first refinement is its zero-shot configuration for this data set
   (``flaml.default.suggest_config``: the portfolio config nearest to the data's meta-features)
   where FLAML has a portfolio for it; then FLAML's CFO (cost-frugal local search), started from
   the learner's best configuration and score, on the learner's FLAML search space for the data
   size. (A zero-shot config is costly on some learners, a random forest of hundreds of trees:
   only the learners that score best pay for it.)

Workers share what ranks the learners: each searches its share of the learners in phase 1, then
refines the best learners of the whole job (the other workers' best per learner comes as ``peers``),
each with its own CFO: two local searches from the same best point, as FLAML's concurrent trials.

State lives in memory; what a server restart loses is the CFO's local state, rebuilt from the best
configuration of each learner in the finished trials (their rows and runs are kept).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from openaml.automl._learners import FLAML_LEARNERS, STAT_MODELS, estimator_class

__all__ = ["Search", "zero_shot_configs"]

log = logging.getLogger("openaml.automl")

_LATE = frozenset({"kneighbor", "sgd", "svc", "histgb"})  # not in FLAML's default estimator list


def zero_shot_configs(ftask: str, X: Any, y: Any, learners: list[str]) -> dict[str, dict[str, Any]]:
    """FLAML learner -> its zero-shot configuration for data ``X, y`` (learners with a portfolio)."""
    out: dict[str, dict[str, Any]] = {}
    try:
        from flaml.default import suggest_config
    except ImportError:  # pragma: no cover - flaml is a dependency
        return out
    for learner in learners:
        if learner not in ("lgbm", "xgboost", "xgb_limitdepth", "rf", "extra_tree"):
            continue
        try:
            found = suggest_config(ftask, X, y, learner, k=1)
            out[learner] = dict(found[0]["hyperparameters"])
        except Exception:  # noqa: BLE001 - no portfolio for this task: the learner's init values are used
            log.debug("no zero-shot config for %s", learner, exc_info=True)
    return out


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return v


class Search:
    """Suggests trials: ``suggest(name, history) -> (algorithm, flaml learner, config)`` or None
    when every learner's search has converged. ``zero_shot``: FLAML learner -> its zero-shot
    configuration, as a dict or a function (called only for the learners refined). ``history``: (algorithm, config, loss or None) of
    the trials created so far (loss None: failed or still running)."""

    def __init__(self, task: str, ftask: str, algorithms: list[str], data_size: tuple[int, int],
                 zero_shot: dict[str, dict[str, Any]] | Callable[[str], dict[str, Any] | None],
                 seed: int = 20) -> None:
        self.task = task
        self.ftask = ftask
        self.algorithms = algorithms
        self.data_size = data_size
        self.zero_shot = zero_shot
        self.seed = seed
        self._cfo: dict[str, Any] = {}
        self._done: set[str] = set()
        self._pending: dict[str, str] = {}  # trial name -> algorithm (CFO suggested it)
        self._zero_tried: set[str] = set()

    def learner(self, algorithm: str) -> str:
        if algorithm in STAT_MODELS:
            return algorithm
        return FLAML_LEARNERS[self.task][algorithm]

    def _space(self, learner: str) -> dict[str, Any]:
        from flaml.automl.task.factory import task_factory

        task = task_factory(self.ftask)
        return dict(estimator_class(learner, self.ftask).search_space(data_size=self.data_size, task=task))

    def initial_config(self, algorithm: str) -> dict[str, Any]:
        learner = self.learner(algorithm)
        if algorithm in STAT_MODELS:
            return {}
        return {k: _jsonable(v["init_value"]) for k, v in self._space(learner).items() if "init_value" in v}

    def suggest(self, name: str, history: list[tuple[str, dict[str, Any], float | None]],
                peers: dict[str, tuple[float, dict[str, Any]]] | None = None,
                spent: dict[str, float] | None = None) -> tuple[str, str, dict[str, Any]] | None:
        """The next trial. ``peers``: algorithm -> (best loss, its configuration) in the other
        workers of the job: the refinement ranks every learner of the job by its best so far, so
        that each worker refines the best learners (from their best configuration, with its own
        local search), not only its own share (as FLAML's learner selection sees every learner).
        ``spent``: algorithm -> seconds its trials took here; given, the runner-up gets a third of
        the refinement's time rather than a third of its trials (a costly runner-up, a forest of
        hundreds of trees, would otherwise take most of the time: FLAML's learner selection weighs
        a learner's cost too)."""
        tried = {a for a, _, _ in history}
        # phase 1: FLAML's default learners first; the others (KNN, SGD, linear SVM, histogram GB)
        # one every fifth trial once refinement began (they rarely win and would delay it)
        late = [a for a in self.algorithms if self.learner(a) in _LATE and a not in tried]
        for algorithm in self.algorithms:
            if algorithm not in tried and algorithm not in late:
                return algorithm, self.learner(algorithm), self.initial_config(algorithm)
        if late and (len(history) % 5 == 4 or not any(loss is not None for _, _, loss in history)):
            return late[0], self.learner(late[0]), self.initial_config(late[0])
        best: dict[str, tuple[float, dict[str, Any]]] = {}
        for a, cfg, loss in [*history, *((a, c, v) for a, (v, c) in (peers or {}).items())]:
            if loss is not None and (a not in best or loss < best[a][0]):
                best[a] = (loss, cfg)
        ranked = [a for a in sorted(best, key=lambda a: best[a][0])
                  if a not in self._done and a not in STAT_MODELS]
        if not ranked:
            return (late[0], self.learner(late[0]), self.initial_config(late[0])) if late else None
        if spent is not None and len(ranked) > 1:  # a third of the time to the runner-up
            second = spent.get(ranked[1], 0.0) < 0.5 * spent.get(ranked[0], 0.0)
        else:  # one phase-2 trial in three: the runner-up
            second = (len(history) - len(self.algorithms)) % 3 == 2
        order = [ranked[1], ranked[0], *ranked[2:]] if second and len(ranked) > 1 else ranked
        for algorithm in order:
            learner = self.learner(algorithm)
            zero = None
            if algorithm in self.algorithms and algorithm not in self._zero_tried:  # its owner tries it, once
                zero = self.zero_shot(learner) if callable(self.zero_shot) else self.zero_shot.get(learner)
            if zero:
                self._zero_tried.add(algorithm)
                if all(cfg != zero for a, cfg, _ in history if a == algorithm):
                    return algorithm, self.learner(algorithm), dict(zero)
            found = self._cfo_suggest(algorithm, name, best[algorithm])
            if found is not None:
                self._pending[name] = algorithm
                return algorithm, self.learner(algorithm), found
            self._done.add(algorithm)
        return (late[0], self.learner(late[0]), self.initial_config(late[0])) if late else None

    def _cfo_suggest(self, algorithm: str, name: str, best: tuple[float, dict[str, Any]]) -> dict[str, Any] | None:
        learner = self.learner(algorithm)
        cfo = self._cfo.get(algorithm)
        if cfo is None:
            from flaml.tune.searcher.blendsearch import CFO

            space = self._space(learner)
            domains = {k: v["domain"] for k, v in space.items()}
            low_cost = {k: v["low_cost_init_value"] for k, v in space.items() if "low_cost_init_value" in v}
            start = {k: best[1].get(k, _jsonable(v.get("init_value"))) for k, v in space.items()}
            start = {k: v for k, v in start.items() if v is not None}
            try:
                cfo = CFO(metric="loss", mode="min", space=domains, low_cost_partial_config=low_cost,
                          points_to_evaluate=[start], evaluated_rewards=[best[0]], seed=self.seed)
            except Exception:  # noqa: BLE001 - a start point outside the space: search from FLAML's low-cost point
                cfo = CFO(metric="loss", mode="min", space=domains, low_cost_partial_config=low_cost, seed=self.seed)
            self._cfo[algorithm] = cfo
        cfg = cfo.suggest(name)
        if cfg is None:
            return None
        return {k: _jsonable(v) for k, v in cfg.items()}

    def tell(self, name: str, loss: float | None) -> None:
        """A trial the CFO suggested ended (loss None: failed or no metric)."""
        algorithm = self._pending.pop(name, None)
        cfo = self._cfo.get(algorithm or "")
        if cfo is None:
            return
        try:
            cfo.on_trial_complete(name, None if loss is None else {"loss": loss, "time_total_s": 1.0},
                                  error=loss is None)
        except Exception:  # noqa: BLE001 - a searcher that lost track of a trial keeps going
            log.debug("CFO on_trial_complete(%s) failed", name, exc_info=True)
