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
     "protected_aliases": [str],           # MLflow registered-model aliases likewise (with each
                                           # protected_tags key that has no =value)
     "deployments": ["online", "batch"]}   # deployments of a version that need a passing verdict

The same policy holds for writes through MLflow's own REST API under ``/mlflow``
(:meth:`RaiGateService.check_mlflow_write`: version tags, versions created with tags, stage
transitions, aliases), so ``MlflowClient().set_model_version_tag`` cannot go round it.

A refused promotion raises :class:`~openaml.errors.ConflictError` (HTTP 409) naming the version, the
action, the verdict and each failing check with its value and threshold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, NoReturn

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
    protected_aliases: list[str] = pydantic.Field(default_factory=list)
    deployments: list[Literal["online", "batch"]] = pydantic.Field(default_factory=lambda: _ALL_DEPLOYMENTS.copy())


def _same_model(model: dict[str, Any], name: str | None, version: str | None, ref: str) -> None:
    """A score card naming a model must be of ``name`` (and ``version``, when both are known)."""
    if not isinstance(model, dict) or not name or not model.get("name"):
        return
    other = str(model["name"]) != name or (version is not None and model.get("version") is not None
                                           and str(model["version"]) != str(version))
    if other:
        raise ValidationError(f"tag {TAG_SCORECARD}={ref!r}: that score card is of model "
                              f"{model['name']}:{model.get('version')}, not {name}:{version or '(new)'}",
                              details={"field": f"tags.{TAG_SCORECARD}"})


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
        for key in ("protected_tags", "protected_stages", "protected_aliases", "deployments"):
            if isinstance(merged.get(key), str):
                merged[key] = [merged[key]]
        try:
            policy = RaiGatePolicy.model_validate(merged)
        except pydantic.ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ValidationError(f"rai_gate.{field}: {err['msg']} (got {err.get('input')!r}); the fields are "
                                  "require (pass or none), protected_tags, protected_stages, protected_aliases, "
                                  "deployments "
                                  "(online, batch)", details={"field": f"rai_gate.{field}"}) from None
        self.ctx.store.set_meta(POLICY_KEY, policy.model_dump_json())
        return policy

    # ------------------------------------------------------------------ verdict
    def read_scorecard(self, ref: str, *, name: str | None = None, version: str | None = None) -> dict[str, Any]:
        """The score card at ``<job>/<output>``: ``{"verdict", "checks", "model"}``. With ``name`` (and
        ``version``), a dashboard whose ``model`` names another model or version is refused.

        Raises:
            ValidationError: ``ref`` is not ``<job>/<output>``, the output holds no score card, or the
                score card is another model's.
            NotFoundError: unknown job or output.
        """
        job, sep, output = str(ref).strip().partition("/")
        if not sep or not job or not output or "/" in output:
            raise ValidationError(f"tag {TAG_SCORECARD}={ref!r}: write <job name>/<output name> (the output that "
                                  "holds the RAI score card, e.g. the gather step's dashboard)",
                                  details={"field": f"tags.{TAG_SCORECARD}"})
        folder = Path(self.ctx.services["jobs"].output_dir(job, output))
        for file in ("dashboard.json", "scorecard.json"):  # the dashboard names its model: checked
            path = folder / file if folder.is_dir() else folder
            if path.name != file or not path.is_file():
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as e:
                raise ValidationError(f"tag {TAG_SCORECARD}={ref!r}: {file} is not valid JSON: {e}") from None
            card = data.get("scorecard") if file == "dashboard.json" and isinstance(data, dict) else data
            if isinstance(card, dict) and card.get("verdict") in ("pass", "fail"):
                model = (data.get("model") if isinstance(data, dict) else None) or card.get("model") or {}
                _same_model(model, name, version, ref)
                return {"verdict": card["verdict"], "checks": list(card.get("checks") or []), "model": model}
        raise ValidationError(f"tag {TAG_SCORECARD}={ref!r}: output {output!r} of job {job!r} holds no score card "
                              "(a dashboard.json with a scorecard, or a scorecard.json with verdict pass/fail)",
                              details={"field": f"tags.{TAG_SCORECARD}"})

    def derive_tags(self, tags: dict[str, Any], *, name: str | None = None,
                    version: str | None = None) -> dict[str, str]:
        """``tags`` with ``rai.verdict``/``rai.failed`` derived from ``rai.scorecard`` when it is given
        (the score card must be of model ``name`` version ``version`` when it names a model).

        Raises:
            ValidationError: the caller set ``rai.verdict`` or ``rai.failed``; a bad score card reference.
        """
        out = {str(k): str(v) for k, v in tags.items()}
        claimed = [k for k in _DERIVED if k in out]
        if claimed:
            raise ValidationError(f"tag {claimed[0]!r} is written by the server from the score card; set "
                                  f"{TAG_SCORECARD}=<job>/<output> instead", details={"field": f"tags.{claimed[0]}"})
        if TAG_SCORECARD in out:
            card = self.read_scorecard(out[TAG_SCORECARD], name=name, version=version)
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

    def check(self, name: str, version: str | None, tags: dict[str, str], action: str) -> None:
        """Raise ConflictError unless the version's linked score card passes (when the policy asks).

        The verdict is read again from the score card file (``rai.scorecard``), not trusted from the
        ``rai.verdict`` tag, which MLflow's own API could change. ``version`` None: a version being
        registered (its number is not known yet)."""
        if self.get_policy().require is None:
            return
        shown = f"{name}:{version or '(new)'}"
        ref = tags.get(TAG_SCORECARD)
        if not ref:
            link = (f"openaml model update -n {name} -v {version} --set tags.{TAG_SCORECARD}=<job>/<output>"
                    if version else f"tag {TAG_SCORECARD}=<job>/<output>")
            self._refuse(shown, action, f"it has no RAI score card verdict; link one with: {link}", None, None)
        try:
            card = self.read_scorecard(str(ref), name=name, version=version)
        except (ValidationError, NotFoundError) as e:
            self._refuse(shown, action, f"its linked score card cannot be used: {e.message}", None, None)
        if card["verdict"] == "pass":
            return
        failed = "; ".join(_check_text(c) for c in card["checks"] if not c.get("passed"))
        self._refuse(shown, action, f"its RAI score card verdict is {card['verdict']!r} ({TAG_SCORECARD}={ref}): "
                     f"failing checks: {failed or 'not recorded'}", card["verdict"], failed)

    @staticmethod
    def _refuse(shown: str, action: str, why: str, verdict: str | None, failed: str | None) -> NoReturn:
        raise ConflictError(f"model {shown} cannot {action}: the workspace's RAI gate requires a passing verdict and "
                            f"{why}", details={"model": shown, "verdict": verdict, "failed": failed})

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

    # ------------------------------------------------------------------ MLflow's REST API (/mlflow)
    def check_mlflow_write(self, endpoint: str, body: dict[str, Any]) -> None:
        """The gate on an MLflow model-registry write (``endpoint``: the path after ``/mlflow/``, e.g.
        ``model-versions/set-tag``; ``body``: its JSON, MLflow's REST API 2.0 fields).

        Gated: ``model-versions/set-tag`` (a protected tag key/value), ``model-versions/create`` with
        ``tags`` (a version registered under a protected tag), ``model-versions/transition-stage`` (a
        protected stage), ``registered-models/alias`` (a protected alias). ``rai.verdict`` and
        ``rai.failed`` are the server's and cannot be set there at all.

        Raises:
            ValidationError: a derived tag set through MLflow (HTTP 400).
            ConflictError: the gate refuses (HTTP 409, the failing checks named), as :meth:`check`.
        """
        name, version = str(body.get("name") or ""), body.get("version")
        version = None if version in (None, "") else str(version)
        if endpoint == "model-versions/set-tag":
            tags = {str(body.get("key")): str(body.get("value", ""))}
        elif endpoint == "model-versions/create":
            tags = {str(t.get("key")): str(t.get("value", "")) for t in body.get("tags") or [] if isinstance(t, dict)}
        else:
            tags = {}
        claimed = [k for k in _DERIVED if k in tags]
        if claimed:
            raise ValidationError(f"tag {claimed[0]!r} is written by the server from the score card; set "
                                  f"{TAG_SCORECARD}=<job>/<output> instead", details={"field": f"tags.{claimed[0]}"})
        policy = self.get_policy()
        if policy.require is None or not name:
            return
        current: dict[str, str] = {}
        if version is not None:
            try:
                current = dict(self.ctx.tracking.get_model_version(name, version)["tags"])
            except (NotFoundError, OpenAMLError):
                return  # MLflow answers an unknown version with its own error
        if endpoint == "registered-models/alias":
            alias = str(body.get("alias") or "")
            keys = {p for p in policy.protected_tags if "=" not in p}
            if alias in policy.protected_aliases or alias in keys:
                self.check(name, version, current, f"get alias {alias!r} (through MLflow's API)")
            return
        stage = str(body.get("stage") or "") if endpoint == "model-versions/transition-stage" else None
        hits = self.protected({k: v for k, v in tags.items() if current.get(k) != v}, stage or None)
        if hits:
            self.check(name, version, {**current, **tags}, f"get {', '.join(hits)} (through MLflow's API)")
