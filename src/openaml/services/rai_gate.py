"""The RAI gate on promotion (an openaml extension; Azure ML has no such gate): a model version carries
its Responsible AI score card's verdict, and a workspace policy makes promotion require a passing one.

Verdict (model version tags, docs/guide/rai.md "Studio, explanations and the promotion gate"):

- ``rai.scorecard``: ``<job>/<output>``, the job output holding the score card: a ``dashboard.json``
  (its ``scorecard``: the RAI gather output) or a ``scorecard.json`` (``{"verdict", "checks"}``).
  Set it at registration (``tags``) or later (``openaml model update --set tags.rai.scorecard=...``);
- ``rai.verdict`` (``pass``/``fail``) and ``rai.failed`` (the failing checks, as text) are written by
  the server from that file, never by the caller (a caller-set value is refused): a verdict cannot be
  claimed, only derived.

Policy (workspace metadata key ``policy.rai_gate``; ``openaml workspace update --set rai_gate.require=pass
--set rai_gate.protected_tags=[production]``)::

    {"require": "pass" | null,             # null: the gate is off
     "protected_tags": [str],              # tag keys (or key=value) only a passing version may carry
     "protected_stages": [str],            # model stages (e.g. Production) likewise
     "deployments": ["online", "batch"]}   # deployments of a version that need a passing verdict

A refused promotion raises :class:`~openaml.errors.ConflictError` (HTTP 409) naming the version, the
action, the verdict and each failing check with its value and threshold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pydantic

from openaml.errors import ConflictError, NotFoundError, OpenAMLError, ValidationError

__all__ = ["RaiGatePolicy", "RaiGateService", "POLICY_KEY", "TAG_SCORECARD", "TAG_VERDICT", "TAG_FAILED"]

POLICY_KEY = "policy.rai_gate"
TAG_SCORECARD, TAG_VERDICT, TAG_FAILED = "rai.scorecard", "rai.verdict", "rai.failed"
_DERIVED = (TAG_VERDICT, TAG_FAILED)

_ALL_DEPLOYMENTS: list[Literal["online", "batch"]] = ["online", "batch"]


class RaiGatePolicy(pydantic.BaseModel):
    """The workspace's promotion policy (see the module docstring)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    require: Literal["pass"] | None = None
    protected_tags: list[str] = pydantic.Field(default_factory=list)
    protected_stages: list[str] = pydantic.Field(default_factory=list)
    deployments: list[Literal["online", "batch"]] = pydantic.Field(default_factory=lambda: _ALL_DEPLOYMENTS.copy())


def _check_text(c: dict[str, Any]) -> str:
    value = c.get("value")
    shown = f"{value:.4g}" if isinstance(value, int | float) else str(value)
    return f"{c.get('metric')} = {shown} (must be {c.get('op')} {c.get('threshold')})"


class RaiGateService:
    """Reads and writes the policy; derives verdict tags; checks a promotion against the policy."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------ policy
    def get_policy(self) -> RaiGatePolicy:
        raw = self.ctx.store.get_meta(POLICY_KEY)
        return RaiGatePolicy.model_validate(json.loads(raw)) if raw else RaiGatePolicy()

    def update_policy(self, changes: dict[str, Any]) -> RaiGatePolicy:
        """Merge ``changes`` into the policy and store it.

        Raises:
            ValidationError: an unknown field or a bad value (named: ``rai_gate.<field>``).
        """
        merged = {**self.get_policy().model_dump(), **changes}
        if merged.get("require") in ("none", "off", ""):
            merged["require"] = None
        for key in ("protected_tags", "protected_stages", "deployments"):
            if isinstance(merged.get(key), str):
                merged[key] = [merged[key]]
        try:
            policy = RaiGatePolicy.model_validate(merged)
        except pydantic.ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ValidationError(f"rai_gate.{field}: {err['msg']} (got {err.get('input')!r}); the fields are "
                                  "require (pass or none), protected_tags, protected_stages, deployments "
                                  "(online, batch)", details={"field": f"rai_gate.{field}"}) from None
        self.ctx.store.set_meta(POLICY_KEY, policy.model_dump_json())
        return policy

    # ------------------------------------------------------------------ verdict
    def read_scorecard(self, ref: str) -> dict[str, Any]:
        """The score card at ``<job>/<output>``: ``{"verdict", "checks"}``.

        Raises:
            ValidationError: ``ref`` is not ``<job>/<output>``, or the output holds no score card.
            NotFoundError: unknown job or output.
        """
        job, sep, output = str(ref).strip().partition("/")
        if not sep or not job or not output or "/" in output:
            raise ValidationError(f"tag {TAG_SCORECARD}={ref!r}: write <job name>/<output name> (the output that "
                                  "holds the RAI score card, e.g. the gather step's dashboard)",
                                  details={"field": f"tags.{TAG_SCORECARD}"})
        folder = Path(self.ctx.services["jobs"].output_dir(job, output))
        for name, pick in (("scorecard.json", lambda d: d), ("dashboard.json", lambda d: d.get("scorecard"))):
            path = folder / name if folder.is_dir() else folder
            if path.name == name and path.is_file():
                try:
                    card = pick(json.loads(path.read_text(encoding="utf-8")))
                except (ValueError, AttributeError) as e:
                    raise ValidationError(f"tag {TAG_SCORECARD}={ref!r}: {name} is not valid JSON: {e}") from None
                if isinstance(card, dict) and card.get("verdict") in ("pass", "fail"):
                    return {"verdict": card["verdict"], "checks": list(card.get("checks") or [])}
        raise ValidationError(f"tag {TAG_SCORECARD}={ref!r}: output {output!r} of job {job!r} holds no score card "
                              "(a dashboard.json with a scorecard, or a scorecard.json with verdict pass/fail)",
                              details={"field": f"tags.{TAG_SCORECARD}"})

    def derive_tags(self, tags: dict[str, Any]) -> dict[str, str]:
        """``tags`` with ``rai.verdict``/``rai.failed`` derived from ``rai.scorecard`` when it is given.

        Raises:
            ValidationError: the caller set ``rai.verdict`` or ``rai.failed``; a bad score card reference.
        """
        out = {str(k): str(v) for k, v in tags.items()}
        claimed = [k for k in _DERIVED if k in out]
        if claimed:
            raise ValidationError(f"tag {claimed[0]!r} is written by the server from the score card; set "
                                  f"{TAG_SCORECARD}=<job>/<output> instead", details={"field": f"tags.{claimed[0]}"})
        if TAG_SCORECARD in out:
            card = self.read_scorecard(out[TAG_SCORECARD])
            out[TAG_VERDICT] = card["verdict"]
            out[TAG_FAILED] = "; ".join(_check_text(c) for c in card["checks"] if not c.get("passed"))
        return out

    # ------------------------------------------------------------------ the gate
    def protected(self, tags: dict[str, str], stage: str | None) -> list[str]:
        """What in ``tags``/``stage`` the policy protects (``tag production``, ``stage Production``)."""
        policy = self.get_policy()
        if policy.require is None:
            return []
        hits = []
        for p in policy.protected_tags:
            key, eq, value = p.partition("=")
            if key in tags and (not eq or tags[key] == value):
                hits.append(f"tag {p}")
        if stage and stage in policy.protected_stages:
            hits.append(f"stage {stage}")
        return hits

    def check(self, name: str, version: str, tags: dict[str, str], action: str) -> None:
        """Raise ConflictError unless the version's tags carry a passing verdict (when the policy asks)."""
        if self.get_policy().require is None:
            return
        verdict = tags.get(TAG_VERDICT)
        if verdict == "pass":
            return
        if verdict is None:
            why = (f"it has no RAI score card verdict; link one with: openaml model update -n {name} -v {version} "
                   f"--set tags.{TAG_SCORECARD}=<job>/<output>")
        else:
            why = (f"its RAI score card verdict is {verdict!r} ({TAG_SCORECARD}={tags.get(TAG_SCORECARD)}): failing "
                   f"checks: {tags.get(TAG_FAILED) or 'not recorded'}")
        raise ConflictError(f"model {name}:{version} cannot {action}: the workspace's RAI gate requires a passing "
                            f"verdict and {why}", details={"model": f"{name}:{version}", "verdict": verdict,
                                                           "failed": tags.get(TAG_FAILED)})

    def check_deployment(self, kind: Literal["online", "batch"], name: str | None, version: str | None,
                         where: str) -> None:
        """The gate on deploying ``name:version`` (``where``: ``online endpoint 'e'``); ``name`` None: an
        inline (unregistered) model, which carries no verdict, so it is refused while the gate is on."""
        policy = self.get_policy()
        if policy.require is None or kind not in policy.deployments:
            return
        if name is None or version is None:
            raise ConflictError(f"an inline model cannot be deployed to {where}: the workspace's RAI gate requires a "
                                "registered model version with a passing score card verdict; register the model "
                                f"(openaml model create ... --set tags.{TAG_SCORECARD}=<job>/<output>) and name it "
                                "as azureml:<name>:<version>", details={"field": "model"})
        try:
            tags = dict(self.ctx.tracking.get_model_version(name, str(version))["tags"])
        except (NotFoundError, OpenAMLError):
            return  # the deployment's own model resolution reports an unknown model
        self.check(name, str(version), tags, f"be deployed to {where}")
