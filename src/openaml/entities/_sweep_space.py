"""Search-space distributions of sweep jobs (spec section 3), with azure-ai-ml v2's names.

Semantics follow Azure ML (HyperDrive): ``loguniform(min_value, max_value)`` is
``exp(uniform(min_value, max_value))`` (the bounds are natural-log exponents), ``q*`` variants
are ``round(x / q) * q``, ``lognormal(mu, sigma)`` is ``exp(normal(mu, sigma))`` and
``randint(upper)`` is an integer in ``[0, upper)``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field

from openaml.entities._base import Entity

__all__ = ["Choice", "Randint", "Uniform", "QUniform", "LogUniform", "QLogUniform", "Normal", "QNormal",
           "LogNormal", "QLogNormal", "Distribution", "DISTRIBUTION_TYPES"]


# ---------------------------------------------------------------------------------- distributions
class _Dist(Entity):
    def bounds_problems(self) -> list[str]:
        return []


class Choice(_Dist):
    """``type: choice``: one of ``values`` (scalars, or dicts holding nested distributions)."""

    type: Literal["choice"] = "choice"
    values: list[Any]

    def __init__(self, values: list[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(values=values, **kwargs) if values is not None else super().__init__(**kwargs)  # type: ignore[call-arg]

    def bounds_problems(self) -> list[str]:
        return [] if self.values else ["values is empty: a choice needs at least one value"]


class Randint(_Dist):
    """``type: randint``: an integer in ``[0, upper)``."""

    type: Literal["randint"] = "randint"
    upper: int

    def __init__(self, upper: int | None = None, **kwargs: Any) -> None:
        super().__init__(upper=upper, **kwargs) if upper is not None else super().__init__(**kwargs)  # type: ignore[call-arg]

    def bounds_problems(self) -> list[str]:
        return [] if self.upper >= 1 else [f"upper must be >= 1 (got {self.upper}); randint draws from [0, upper)"]


class _Ranged(_Dist):
    min_value: float
    max_value: float

    def __init__(self, min_value: float | None = None, max_value: float | None = None, **kwargs: Any) -> None:
        if min_value is not None:
            kwargs["min_value"] = min_value
        if max_value is not None:
            kwargs["max_value"] = max_value
        super().__init__(**kwargs)

    def bounds_problems(self) -> list[str]:
        out = []
        if not (math.isfinite(self.min_value) and math.isfinite(self.max_value)):
            out.append("min_value and max_value must be finite numbers")
        elif self.min_value > self.max_value:
            out.append(f"min_value ({self.min_value}) is greater than max_value ({self.max_value})")
        kind: str = getattr(self, "type", "")  # each subclass declares its own ``type``
        if kind.startswith(("loguniform", "qloguniform")) and max(abs(self.min_value), abs(self.max_value)) > 700:
            out.append(f"{kind} bounds are natural-log exponents (the value is exp(uniform(min, max))); "
                       f"{self.max_value} overflows: give e.g. min_value: {math.log(1e-3):.2f} for 1e-3")
        q = getattr(self, "q", None)
        if q is not None and not q > 0:
            out.append(f"q must be > 0 (got {q})")
        return out


class Uniform(_Ranged):
    type: Literal["uniform"] = "uniform"


class LogUniform(_Ranged):
    """``exp(uniform(min_value, max_value))``: the bounds are natural-log exponents (Azure ML)."""

    type: Literal["loguniform"] = "loguniform"


class QUniform(_Ranged):
    type: Literal["quniform"] = "quniform"
    q: float

    def __init__(self, min_value: float | None = None, max_value: float | None = None, q: float | None = None,
                 **kwargs: Any) -> None:
        if q is not None:
            kwargs["q"] = q
        super().__init__(min_value, max_value, **kwargs)


class QLogUniform(QUniform):
    type: Literal["qloguniform"] = "qloguniform"  # type: ignore[assignment]


class _Gauss(_Dist):
    mu: float
    sigma: float

    def __init__(self, mu: float | None = None, sigma: float | None = None, **kwargs: Any) -> None:
        if mu is not None:
            kwargs["mu"] = mu
        if sigma is not None:
            kwargs["sigma"] = sigma
        super().__init__(**kwargs)

    def bounds_problems(self) -> list[str]:
        out = []
        if not (math.isfinite(self.mu) and math.isfinite(self.sigma)):
            out.append("mu and sigma must be finite numbers")
        elif self.sigma <= 0:
            out.append(f"sigma must be > 0 (got {self.sigma})")
        q = getattr(self, "q", None)
        if q is not None and not q > 0:
            out.append(f"q must be > 0 (got {q})")
        return out


class Normal(_Gauss):
    type: Literal["normal"] = "normal"


class LogNormal(_Gauss):
    """``exp(normal(mu, sigma))``."""

    type: Literal["lognormal"] = "lognormal"


class QNormal(_Gauss):
    type: Literal["qnormal"] = "qnormal"
    q: float

    def __init__(self, mu: float | None = None, sigma: float | None = None, q: float | None = None,
                 **kwargs: Any) -> None:
        if q is not None:
            kwargs["q"] = q
        super().__init__(mu, sigma, **kwargs)


class QLogNormal(QNormal):
    type: Literal["qlognormal"] = "qlognormal"  # type: ignore[assignment]


Distribution = Annotated[
    Choice | Randint | Uniform | QUniform | LogUniform | QLogUniform | Normal | QNormal | LogNormal | QLogNormal,
    Field(discriminator="type"),
]
DISTRIBUTION_TYPES = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal",
                      "lognormal", "qlognormal")
