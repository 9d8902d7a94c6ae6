"""Early-termination policies and sampling algorithms of sweep jobs, with azure-ai-ml v2's names.

Policy semantics follow Azure ML's (bandit slack, median stopping, truncation selection) and, for
``HyperbandPolicy``, Li et al. 2018 (Hyperband: a novel bandit-based approach to hyperparameter
optimization).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from openaml.entities._base import Entity

__all__ = ["BanditPolicy", "MedianStoppingPolicy", "TruncationSelectionPolicy", "HyperbandPolicy",
           "EarlyTerminationPolicy", "RandomSamplingAlgorithm", "GridSamplingAlgorithm",
           "BayesianSamplingAlgorithm", "SamplingAlgorithm", "log_base"]


# ---------------------------------------------------------------------------------- policies
class _Policy(Entity):
    evaluation_interval: int = Field(default=0, ge=0)
    delay_evaluation: int = Field(default=0, ge=0)


class BanditPolicy(_Policy):
    """Cancel a trial whose metric at an interval is not within ``slack_factor`` (ratio) or
    ``slack_amount`` (absolute) of the best trial's metric at that interval (Azure ML)."""

    type: Literal["bandit"] = "bandit"
    slack_factor: float | None = Field(default=None, ge=0)
    slack_amount: float | None = Field(default=None, ge=0)


class MedianStoppingPolicy(_Policy):
    """Cancel a trial whose best metric so far is worse than the median of the other trials'
    running averages at the same interval (Azure ML; Google Vizier's median stopping rule)."""

    type: Literal["median_stopping"] = "median_stopping"
    evaluation_interval: int = Field(default=1, ge=0)


class TruncationSelectionPolicy(_Policy):
    """At each interval cancel the trials in the lowest ``truncation_percentage`` % (Azure ML)."""

    type: Literal["truncation_selection"] = "truncation_selection"
    truncation_percentage: int = Field(ge=1, le=99)


class HyperbandPolicy(Entity):
    """Asynchronous Hyperband (``type: hyperband``), an openaml extension: Azure ML has no such policy.

    Resources are counted in *intervals*, the reports of the primary metric a trial made (the unit of
    ``evaluation_interval`` and ``delay_evaluation``): a trial logging AUC every 10 boosting rounds for
    300 rounds has ``max_resource: 30``. Trials are spread over ``brackets`` in turn (weighted by each
    bracket's Hyperband budget, Li et al. 2018, "Hyperband: A Novel Bandit-Based Approach to
    Hyperparameter Optimization", JMLR 18). Bracket ``b`` runs asynchronous successive halving (ASHA,
    Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning", MLSys) with rungs at
    ``min_resource * reduction_factor ** (b + i)`` intervals below ``max_resource``: a trial reaching a
    rung goes on only if its value there is among the best ``max(1, n // reduction_factor)`` of the
    ``n`` values its bracket's trials reported at that rung (itself included, finished trials too);
    otherwise it is canceled. ``brackets: 1`` is plain ASHA. Parameter names are Optuna's
    (``HyperbandPruner``).

    Args:
        min_resource: intervals before the first rung (>= 1).
        max_resource: intervals of a full trial (> min_resource); no rung at or above it.
        reduction_factor: eta, the 1/eta kept at each rung (>= 2).
        brackets: number of brackets; default ``floor(log_eta(max_resource / min_resource)) + 1``
            (all of Hyperband's); at most that many.
        bootstrap_count: no trial is stopped at a rung until more than this many trials reported there.

    Raises:
        pydantic.ValidationError: a value out of range or ``max_resource <= min_resource`` (reported as
            a ``ValidationError`` naming ``early_termination`` by the loaders and the server).
    """

    type: Literal["hyperband"] = "hyperband"
    min_resource: int = Field(default=1, ge=1)
    max_resource: int = Field(ge=2)
    reduction_factor: int = Field(default=3, ge=2)
    brackets: int | None = Field(default=None, ge=1)
    bootstrap_count: int = Field(default=0, ge=0)

    @property
    def max_brackets(self) -> int:
        """``floor(log_eta(max_resource / min_resource)) + 1``: brackets with at least one rung."""
        n, r = 0, self.min_resource
        while r < self.max_resource:
            n += 1
            r *= self.reduction_factor
        return max(n, 1)

    @property
    def n_brackets(self) -> int:
        return self.brackets if self.brackets is not None else self.max_brackets

    @model_validator(mode="before")
    @classmethod
    def _no_azure_intervals(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [k for k in ("evaluation_interval", "delay_evaluation") if data.get(k) is not None]
            if given:
                raise ValueError(f"hyperband takes no {' or '.join(given)}: it judges a trial at its rungs "
                                 "(min_resource * reduction_factor ** k intervals); raise min_resource to delay the "
                                 "first decision")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> HyperbandPolicy:
        if self.max_resource <= self.min_resource:
            raise ValueError(f"hyperband needs max_resource > min_resource (got max_resource {self.max_resource}, "
                             f"min_resource {self.min_resource}); both count primary-metric reports (intervals)")
        if self.brackets is not None and self.brackets > self.max_brackets:
            raise ValueError(f"hyperband brackets {self.brackets} is more than the {self.max_brackets} that "
                             f"min_resource {self.min_resource}, max_resource {self.max_resource} and reduction_factor "
                             f"{self.reduction_factor} allow; give brackets <= {self.max_brackets} or omit it")
        return self


EarlyTerminationPolicy = Annotated[BanditPolicy | MedianStoppingPolicy | TruncationSelectionPolicy | HyperbandPolicy,
                                   Field(discriminator="type")]


# ---------------------------------------------------------------------------------- sampling, limits, objective
class RandomSamplingAlgorithm(Entity):
    """Random or Sobol sampling. ``logbase`` (a positive number other than 1, or ``"e"``, the default)
    is the base of the log-scaled distributions: ``loguniform(a, b)`` draws from [logbase**a,
    logbase**b] and ``lognormal(mu, sigma)`` returns ``logbase**normal(mu, sigma)`` (azure-ai-ml's
    ``RandomSamplingAlgorithm(logbase=...)``). Both are checked by ``sweep_problems``."""

    type: Literal["random"] = "random"
    seed: int | None = None  # range checked by sweep_problems (stored rows stay readable)
    rule: Literal["random", "sobol"] | None = None
    logbase: Any = None


def log_base(algo: Any) -> float:
    """The base of log-scaled sampling for a sampling algorithm (e unless ``logbase`` says otherwise).

    Raises ValueError with the fix when ``logbase`` is not a positive number other than 1 or "e".
    """
    raw = getattr(algo, "logbase", None)
    if raw is None or (isinstance(raw, str) and raw.strip().lower() == "e"):
        return math.e
    try:
        base = float(raw)
    except (TypeError, ValueError):
        base = float("nan")
    if not (math.isfinite(base) and base > 0 and base != 1):
        raise ValueError(f"field 'sampling_algorithm.logbase': must be a positive number other than 1, or \"e\" "
                         f"(got {raw!r})")
    return base


class GridSamplingAlgorithm(Entity):
    type: Literal["grid"] = "grid"


class BayesianSamplingAlgorithm(Entity):
    type: Literal["bayesian"] = "bayesian"
    seed: int | None = None  # openaml extension: reproducible sampling; range checked by sweep_problems


SamplingAlgorithm = Annotated[RandomSamplingAlgorithm | GridSamplingAlgorithm | BayesianSamplingAlgorithm,
                              Field(discriminator="type")]
