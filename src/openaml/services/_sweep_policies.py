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
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import median
from typing import Any

__all__ = ["evaluate_policy", "interval_applies"]


def interval_applies(policy: Any, k: int) -> bool:
    every = max(1, int(policy.evaluation_interval or 0))
    return k >= max(1, int(policy.delay_evaluation or 0)) and k % every == 0


def _worse(a: float, b: float, maximize: bool) -> bool:
    return a < b if maximize else a > b


def _decide(policy: Any, maximize: bool, trial: str, k: int, hist: dict[str, list[float]]) -> str | None:
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
        histories: trial -> finite primary-metric values in report order (every trial, finished too).
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
            if not interval_applies(policy, k):
                continue
            reason = _decide(policy, maximize, trial, k, histories)
            if reason:
                out[trial] = reason
                break
    return out
