"""Early-termination policies of a sweep, as Azure ML defines them (pure functions).

An *interval* is one report of the primary metric: the k-th finite value a trial logged
(ordered by step, then by time). A policy is applied to a running trial at interval ``k`` when
``k >= delay_evaluation`` and ``k`` is a multiple of ``evaluation_interval`` (0 counts as 1):

- bandit: with the best value any trial reported at interval ``k`` (``best``), cancel when the
  trial's value is worse than ``best / (1 + slack_factor)`` (maximize) or ``best * (1 + slack_factor)``
  (minimize), or worse than ``best -/+ slack_amount``;
- median_stopping: cancel when the trial's best value up to ``k`` is worse than the median of the
  other trials' running averages up to ``k`` (trials that reached ``k``);
- truncation_selection: rank the values at ``k`` of every trial that reached it; cancel the trial
  when it is among the lowest ``floor(n * truncation_percentage / 100)``.

Trials that have finished still count as comparison points (Azure compares against all trials).

- hyperband (an openaml extension, :class:`~openaml.entities._sweep.HyperbandPolicy`): asynchronous
  Hyperband. The trial at position ``i`` of ``histories`` (creation order) belongs to bracket
  :func:`bracket_of`; in bracket ``b`` the rungs are ``min_resource * reduction_factor ** (b + j)``
  intervals (below ``max_resource``). At a rung the trial goes on only if its value there is among
  the best ``max(1, n // reduction_factor)`` of the ``n`` values its bracket reported at that rung
  (ASHA's promotion rule applied as trials arrive, Li et al. 2020; brackets as Li et al. 2018).
  ``evaluation_interval`` and ``delay_evaluation`` do not apply: the rungs are the evaluation points.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import median
from typing import Any

__all__ = ["bracket_of", "evaluate_policy", "hyperband_rungs", "interval_applies"]


def interval_applies(policy: Any, k: int) -> bool:
    every = max(1, int(policy.evaluation_interval or 0))
    return k >= max(1, int(policy.delay_evaluation or 0)) and k % every == 0


def _bracket_budgets(policy: Any) -> list[int]:
    """Hyperband's number of trials per bracket, ``ceil(S * eta**s / (s + 1))`` with ``s`` the
    bracket's number of halvings (Li et al. 2018, algorithm 1; the same weights as Optuna)."""
    n, eta = policy.n_brackets, policy.reduction_factor
    top = policy.max_brackets - 1
    return [math.ceil(n * eta ** (top - b) / (top - b + 1)) for b in range(n)]


def bracket_of(policy: Any, position: int) -> int:
    """The bracket (0 = the most aggressive) of the trial created ``position``-th (0-based).

    Trials are dealt to brackets by smooth weighted round robin over :func:`_bracket_budgets`, so
    the split is deterministic, follows the budgets, and every bracket gets trials early.
    """
    budgets = _bracket_budgets(policy)
    total = sum(budgets)
    current = [0] * len(budgets)
    pick = 0
    for _ in range(position % total + 1):
        for b, w in enumerate(budgets):
            current[b] += w
        pick = max(range(len(budgets)), key=lambda b: (current[b], -b))
        current[pick] -= total
    return pick


def hyperband_rungs(policy: Any, bracket: int) -> list[int]:
    """Intervals (1-based report counts) at which a trial of ``bracket`` is judged."""
    out = []
    r = policy.min_resource * policy.reduction_factor ** bracket
    while r < policy.max_resource:
        out.append(r)
        r *= policy.reduction_factor
    return out


def _hyperband(policy: Any, maximize: bool, trial: str, k: int, hist: dict[str, list[float]]) -> str | None:
    order = list(hist)
    bracket = bracket_of(policy, order.index(trial))
    if k not in hyperband_rungs(policy, bracket):
        return None
    mine = hist[trial][k - 1]
    values = [h[k - 1] for i, (t, h) in enumerate(hist.items())
              if len(h) >= k and bracket_of(policy, i) == bracket]
    if len(values) <= policy.bootstrap_count:
        return None
    keep = max(1, len(values) // policy.reduction_factor)
    better = sum(1 for v in values if _worse(mine, v, maximize))
    if better >= keep:
        return (f"hyperband policy at interval {k} (bracket {bracket}): metric {mine:.6g} is not among the best "
                f"{keep} of {len(values)} trials at this rung (reduction_factor {policy.reduction_factor})")
    return None


def _worse(a: float, b: float, maximize: bool) -> bool:
    return a < b if maximize else a > b


def _decide(policy: Any, maximize: bool, trial: str, k: int, hist: dict[str, list[float]]) -> str | None:
    if policy.type == "hyperband":
        return _hyperband(policy, maximize, trial, k, hist)
    mine = hist[trial][k - 1]
    reached = {t: h for t, h in hist.items() if len(h) >= k}
    if policy.type == "bandit":
        values = [h[k - 1] for h in reached.values()]
        best = max(values) if maximize else min(values)
        if policy.slack_factor is not None:
            limit = best / (1 + policy.slack_factor) if maximize else best * (1 + policy.slack_factor)
            rule = f"slack_factor {policy.slack_factor}"
        else:
            limit = best - policy.slack_amount if maximize else best + policy.slack_amount
            rule = f"slack_amount {policy.slack_amount}"
        if _worse(mine, limit, maximize):
            return (f"bandit policy at interval {k}: metric {mine:.6g} is outside {rule} of the best "
                    f"{best:.6g} (limit {limit:.6g})")
        return None
    if policy.type == "median_stopping":
        others = [sum(h[:k]) / k for t, h in reached.items() if t != trial]
        if not others:
            return None
        med = median(others)
        best_so_far = max(hist[trial][:k]) if maximize else min(hist[trial][:k])
        if _worse(best_so_far, med, maximize):
            return (f"median stopping policy at interval {k}: best metric so far {best_so_far:.6g} is worse than "
                    f"the median {med:.6g} of {len(others)} other trials' running averages")
        return None
    if policy.type == "truncation_selection":
        values = [h[k - 1] for h in reached.values()]
        n_cut = math.floor(len(values) * policy.truncation_percentage / 100)
        below = sum(1 for v in values if _worse(v, mine, maximize))
        if below < n_cut:
            return (f"truncation selection policy at interval {k}: metric {mine:.6g} is in the lowest "
                    f"{policy.truncation_percentage}% of {len(values)} trials")
        return None
    return None


def evaluate_policy(policy: Any, goal: str, histories: dict[str, list[float]], running: Iterable[str],
                    evaluated: dict[str, int]) -> dict[str, str]:
    """Trials to cancel, with the reason: ``{trial: reason}``.

    Args:
        histories: trial -> finite primary-metric values in report order (every trial, finished too),
            in trial-creation order (hyperband deals trials to brackets by that position).
        running: trials that may be canceled.
        evaluated: trial -> last interval already evaluated; updated in place, so each interval of
            each trial is judged once, as it is reported.
    """
    if policy is None:
        return {}
    maximize = goal == "maximize"
    out: dict[str, str] = {}
    for trial in running:
        hist = histories.get(trial) or []
        start = evaluated.get(trial, 0) + 1
        for k in range(start, len(hist) + 1):
            evaluated[trial] = k
            if policy.type != "hyperband" and not interval_applies(policy, k):
                continue
            reason = _decide(policy, maximize, trial, k, histories)
            if reason:
                out[trial] = reason
                break
    return out
