"""Sweep jobs (spec section 3): limits, objective, the trial and the ``SweepJob`` entity, with
azure-ai-ml v2's names and field names, and the checks a sweep passes before it runs.

The distributions live in :mod:`openaml.entities._sweep_space`, the policies and sampling
algorithms in :mod:`openaml.entities._sweep_policy` (re-exported here); loading a trial component
file and submitting are the SDK's (:mod:`openaml.sdk._sweeps`).
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Literal

import pydantic
from pydantic import Field, field_validator, model_validator

from openaml._templates import references
from openaml.entities._base import Entity, validation_error_from_pydantic
from openaml.entities._environment import Environment
from openaml.entities._io import Input, Output, normalize_inputs, normalize_outputs
from openaml.entities._job import Job, JobResources
from openaml.entities._sweep_policy import (
    BanditPolicy,
    BayesianSamplingAlgorithm,
    EarlyTerminationPolicy,
    GridSamplingAlgorithm,
    HyperbandPolicy,
    MedianStoppingPolicy,
    RandomSamplingAlgorithm,
    SamplingAlgorithm,
    TruncationSelectionPolicy,
    log_base,
)
from openaml.entities._sweep_space import (
    DISTRIBUTION_TYPES,
    Choice,
    Distribution,
    LogNormal,
    LogUniform,
    Normal,
    QLogNormal,
    QLogUniform,
    QNormal,
    QUniform,
    Randint,
    Uniform,
    _Dist,
)

__all__ = [
    "Choice", "Randint", "Uniform", "QUniform", "LogUniform", "QLogUniform", "Normal", "QNormal", "LogNormal",
    "QLogNormal", "Distribution", "BanditPolicy", "MedianStoppingPolicy", "TruncationSelectionPolicy",
    "HyperbandPolicy", "EarlyTerminationPolicy", "SweepJobLimits", "Objective", "RandomSamplingAlgorithm", "GridSamplingAlgorithm",
    "BayesianSamplingAlgorithm", "SamplingAlgorithm", "TrialCommand", "SweepJob", "sweep_problems",
    "grid_points", "DISTRIBUTION_TYPES", "trial_from_component", "is_component_reference", "log_base",
]


class SweepJobLimits(Entity):
    """``max_total_trials`` (required before submission), ``max_concurrent_trials``,
    ``timeout`` (seconds, the whole sweep) and ``trial_timeout`` (seconds, each trial)."""

    max_total_trials: int | None = None
    max_concurrent_trials: int | None = None
    timeout: int | None = None
    trial_timeout: int | None = None


class Objective(Entity):
    goal: Literal["maximize", "minimize"]
    primary_metric: str

    @field_validator("goal", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


class TrialCommand(Entity):
    """The trial of a sweep: an inline command (``${{search_space.x}}`` in ``command``)."""

    command: str
    code: str | None = None
    environment: str | Environment | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    resources: JobResources | None = None
    distribution: dict[str, Any] | None = None
    queue_settings: dict[str, Any] | None = None
    type: Literal["command"] | None = None

    @field_validator("environment", mode="before")
    @classmethod
    def _env(cls, v: Any) -> Any:
        return Environment.model_validate(v) if isinstance(v, dict) else v

    @field_validator("environment_variables", mode="before")
    @classmethod
    def _env_str(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): "" if x is None else (str(x).lower() if isinstance(x, bool) else str(x))
                    for k, x in v.items()}
        return v


# ---------------------------------------------------------------------------------- the sweep job
class SweepJob(Job):
    """A sweep job (``type: sweep``): trials are child command jobs, one per sampled point."""

    type: Literal["sweep"] = "sweep"
    trial: TrialCommand | str
    inputs: dict[str, Input] = Field(default_factory=dict)
    outputs: dict[str, Output] = Field(default_factory=dict)
    search_space: dict[str, Distribution] = Field(default_factory=dict)
    sampling_algorithm: SamplingAlgorithm = Field(default_factory=RandomSamplingAlgorithm)
    objective: Objective | None = None
    early_termination: EarlyTerminationPolicy | None = None
    limits: SweepJobLimits | None = None
    resources: JobResources | None = None

    @model_validator(mode="before")
    @classmethod
    def _component_trial(cls, data: Any) -> Any:
        """``SweepJob(trial=load_component(...))``: the component becomes the inline trial;
        ``SweepJob(trial=command_job)`` (azure-ai-ml): the command job's command, code, environment
        and resources, its ``${{inputs.k}}`` of a swept ``k`` read from the search space, and its
        inputs (less the swept ones) as the sweep's when the sweep gives none."""
        from openaml.entities._component import CommandComponent
        from openaml.entities._job import CommandJob

        if isinstance(data, dict) and isinstance(data.get("trial"), CommandJob):
            cj = data["trial"]
            space = data.get("search_space") or {}
            cmd = cj.command
            for key in space:
                cmd = re.sub(r"\$\{\{\s*inputs\." + re.escape(key) + r"\s*\}\}", "${{search_space." + key + "}}",
                             cmd)
            data = dict(data)
            data["trial"] = TrialCommand(command=cmd, code=cj.code, environment=cj.environment,
                                         environment_variables=cj.environment_variables, resources=cj.resources,
                                         distribution=cj.distribution)
            if not data.get("inputs"):
                data["inputs"] = {k: v for k, v in cj.inputs.items() if k not in space}
            if not data.get("outputs"):
                data["outputs"] = dict(cj.outputs)
            for key in ("compute", "experiment_name", "display_name"):
                if data.get(key) is None and getattr(cj, key) is not None:
                    data[key] = getattr(cj, key)
            return data
        if isinstance(data, dict) and isinstance(data.get("trial"), CommandComponent):
            comp = data["trial"].model_dump(mode="json", exclude_none=True)
            data = dict(data)
            trial, inputs, outputs, problems = trial_from_component(
                comp, data.get("inputs") or {}, data.get("outputs") or {}, data.get("search_space") or {})
            if problems:
                raise ValueError("; ".join(problems))
            data.update(trial=trial, inputs=inputs, outputs=outputs)
        return data

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, v: Any) -> Any:
        return normalize_inputs(v)

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs(cls, v: Any) -> Any:
        return normalize_outputs(v)

    @field_validator("trial", mode="wrap")
    @classmethod
    def _trial(cls, v: Any, handler: Any) -> Any:
        # one branch per form, so errors name the inline command's fields only (not the union's arms)
        if isinstance(v, str):
            if not v.strip():
                raise ValueError("empty: give an inline command (trial: {command: ..., environment: ...}) or a "
                                 "component (trial: ./component.yml, azureml:<name>:<version> or "
                                 "azureml:<name>@latest)")
            return v
        if isinstance(v, TrialCommand):
            return v
        return TrialCommand.model_validate(v)

    @property
    def trial_is_reference(self) -> bool:
        """The trial names a component (a local YAML file or a registered ``azureml:`` one)."""
        return isinstance(self.trial, str)

    @field_validator("sampling_algorithm", mode="before")
    @classmethod
    def _algo(cls, v: Any) -> Any:
        if isinstance(v, str):
            return {"type": v.lower()}
        if isinstance(v, dict) and isinstance(v.get("type"), str):
            return {**v, "type": v["type"].lower()}
        return v

    @field_validator("early_termination", mode="before")
    @classmethod
    def _policy(cls, v: Any) -> Any:
        if isinstance(v, dict) and isinstance(v.get("type"), str):
            return {**v, "type": v["type"].lower()}
        return v

    # azure-ai-ml's builder-style setters
    def set_limits(self, *, max_concurrent_trials: int | None = None, max_total_trials: int | None = None,
                   timeout: int | None = None, trial_timeout: int | None = None) -> None:
        """Set limits, keeping those not given (azure-ai-ml ``SweepJob.set_limits``)."""
        cur = self.limits or SweepJobLimits()
        self.limits = SweepJobLimits(
            max_total_trials=max_total_trials if max_total_trials is not None else cur.max_total_trials,
            max_concurrent_trials=max_concurrent_trials if max_concurrent_trials is not None
            else cur.max_concurrent_trials,
            timeout=timeout if timeout is not None else cur.timeout,
            trial_timeout=trial_timeout if trial_timeout is not None else cur.trial_timeout)

    def set_objective(self, *, goal: str | None = None, primary_metric: str | None = None) -> None:
        cur = self.objective
        self.objective = Objective(goal=goal or (cur.goal if cur else "maximize"),  # type: ignore[arg-type]
                                   primary_metric=primary_metric or (cur.primary_metric if cur else ""))

_COMPONENT_REF = re.compile(r"^(azureml:|azureml://registries/)|^[A-Za-z0-9_\-.]+(:[^:@/]+|@[A-Za-z0-9_]+)$")


def is_component_reference(ref: str) -> bool:
    """``azureml:name:version``, ``azureml:name@latest``, ``name:version``, ``name@latest`` or a
    registry URI (not a local file: those end in .yml/.yaml or hold a path separator)."""
    ref = ref.strip()
    if ref.startswith("azureml:"):
        return True
    if ref.endswith((".yml", ".yaml")) or "/" in ref or "\\" in ref:
        return False
    return bool(_COMPONENT_REF.match(ref))


def trial_from_component(comp: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any],
                         search_space: dict[str, Any], *, component: str | None = None
                         ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[str]]:
    """A command component as a sweep's trial: ``(trial, inputs, outputs, problems)``.

    As in Azure ML's sweep over a component (spec section 3, the pipeline sweep node): each
    search-space key binds to the component input of the same name (``${{inputs.k}}`` in its
    command receives the sampled value); the sweep's ``inputs`` bind the other inputs; an input
    bound by neither takes its ``default``, or is left out when ``optional``. Component outputs the
    sweep does not declare become sweep outputs (one folder per trial). ``problems`` names every
    search-space key or sweep input that is not an input of the component, and every required
    input left unbound.
    """
    label = component or comp.get("name") or "the component"
    declared = comp.get("inputs") or {}
    problems: list[str] = []
    cmd = str(comp.get("command") or "")
    for key in search_space:
        if key not in declared:
            problems.append(f"field 'search_space.{key}': {label} has no input {key!r}; its inputs: "
                            f"{', '.join(sorted(declared)) or 'none'}")
        cmd = re.sub(r"\$\{\{\s*inputs\." + re.escape(key) + r"\s*\}\}", "${{search_space." + key + "}}", cmd)
    out_inputs = dict(inputs)
    for key in inputs:
        if key not in declared:
            problems.append(f"field 'inputs.{key}': {label} has no input {key!r}; its inputs: "
                            f"{', '.join(sorted(declared)) or 'none'}")
    for key, port in declared.items():
        if key in search_space or key in inputs:
            continue
        port = port if isinstance(port, dict) else port.model_dump(mode="json", exclude_none=True)
        if port.get("default") is not None:
            out_inputs[key] = {"type": port.get("type", "string"), "value": port["default"]} \
                if port.get("type") in ("string", "number", "integer", "boolean") else \
                {"type": port.get("type", "uri_folder"), "path": port["default"]}
        elif not port.get("optional"):
            problems.append(f"{label}: input {key!r} ({port.get('type', 'uri_folder')}) is not bound: give it under "
                            "the sweep's inputs or search_space")
    out_outputs = dict(outputs)
    for key, port in (comp.get("outputs") or {}).items():
        if key not in out_outputs:
            port = port if isinstance(port, dict) else port.model_dump(mode="json", exclude_none=True)
            out_outputs[key] = {"type": port.get("type", "uri_folder")}
    trial: dict[str, Any] = {"command": cmd}
    for key in ("code", "environment", "resources", "distribution", "queue_settings"):
        if comp.get(key) is not None:
            trial[key] = comp[key]
    return trial, out_inputs, out_outputs, problems


_SEARCH_EXPR = re.compile(r"\$\{\{\s*search_space\.[A-Za-z0-9_.\-]+\s*\}\}")

_BAYES_TYPES = ("choice", "uniform", "quniform")


def grid_points(space: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of a choice-only space, in a stable order (first key varies slowest)."""
    keys = list(space)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(space[k].values for k in keys))]


def sweep_problems(job: SweepJob) -> tuple[list[str], list[str]]:
    """(problems, notes) of a sweep before anything runs; notes are warnings (clamped limits).

    Enforces Azure ML's rules: grid takes only ``choice``; bayesian takes only ``choice``,
    ``uniform`` and ``quniform`` and no early termination; limits are positive;
    ``max_concurrent_trials`` above ``max_total_trials`` is clamped. Also: non-empty, consistent
    distributions, and every ``${{search_space.x}}`` names a declared parameter.
    Mutates ``job.limits`` when clamping.
    """
    problems: list[str] = []
    notes: list[str] = []
    algo = job.sampling_algorithm.type
    if job.objective is None:
        problems.append("field 'objective': required (goal: maximize|minimize and primary_metric)")
    elif not job.objective.primary_metric:
        problems.append("field 'objective.primary_metric': required (the metric name the trials log)")
    if not job.search_space:
        problems.append("field 'search_space': empty; declare at least one parameter, e.g. "
                        "{lr: {type: uniform, min_value: 0.01, max_value: 0.1}}")
    for name, dist in job.search_space.items():
        for p in dist.bounds_problems():
            problems.append(f"field 'search_space.{name}': {p}")
        if algo == "grid" and dist.type != "choice":
            problems.append(f"field 'search_space.{name}': grid sampling takes only choice distributions "
                            f"(got {dist.type}); use random or bayesian sampling, or a choice of values")
        if algo == "bayesian" and dist.type not in _BAYES_TYPES:
            problems.append(f"field 'search_space.{name}': bayesian sampling takes only choice, uniform and "
                            f"quniform (got {dist.type}); use random sampling for {dist.type}")
        if algo in ("grid", "bayesian") and dist.type == "choice" and any(isinstance(v, dict) for v in dist.values):
            problems.append(f"field 'search_space.{name}': nested (conditional) spaces need random sampling")
    seed = getattr(job.sampling_algorithm, "seed", None)
    if seed is not None and not 0 <= seed <= 2**32 - 1:  # numpy's range, which Optuna's samplers use
        problems.append(f"field 'sampling_algorithm.seed': must be between 0 and 4294967295 (2**32 - 1) (got {seed})")
    try:
        log_base(job.sampling_algorithm)
    except ValueError as exc:
        problems.append(str(exc))
    if algo == "bayesian" and job.early_termination is not None:
        problems.append("field 'early_termination': bayesian sampling does not support early termination "
                        "(Azure ML rule); remove the policy or use random sampling")
    pol = job.early_termination
    if isinstance(pol, BanditPolicy):
        if (pol.slack_factor is None) == (pol.slack_amount is None):
            problems.append("field 'early_termination': bandit takes exactly one of slack_factor and slack_amount")
    lim = job.limits
    if lim is None or lim.max_total_trials is None:
        problems.append("field 'limits.max_total_trials': required (a positive integer)")
    if lim is not None:
        for key in ("max_total_trials", "max_concurrent_trials", "timeout", "trial_timeout"):
            v = getattr(lim, key)
            if v is not None and v <= 0:
                problems.append(f"field 'limits.{key}': must be positive (got {v})")
        if (lim.max_total_trials and lim.max_concurrent_trials and lim.max_total_trials > 0
                and lim.max_concurrent_trials > lim.max_total_trials):
            notes.append(f"limits.max_concurrent_trials ({lim.max_concurrent_trials}) is above max_total_trials "
                         f"({lim.max_total_trials}); clamped to {lim.max_total_trials}")
            lim.max_concurrent_trials = lim.max_total_trials
    declared = set(job.search_space)
    if isinstance(job.trial, str):  # a component reference: checked once the server resolves it
        return problems, notes
    for expr in references(job.trial.command):
        root, _, rest = expr.partition(".")
        if root == "search_space" and rest not in declared:
            problems.append(f"field 'trial.command': ${{{{{expr}}}}} names {rest!r}, which is not in search_space; "
                            f"declared: {', '.join(sorted(declared)) or 'none'}")
    return problems, notes


# ---------------------------------------------------------------------------------- the command builder path
def command_with_search_space(cmd: Any, kwargs: dict[str, Any]) -> Any:
    """``command(...)(C=Choice([...]), max_iter=100)``: distributions become the search space,
    other values set inputs (azure-ai-ml ``Command.__call__``).

    Raises:
        ValidationError: a keyword that is not one of the command's ``inputs`` (azure-ai-ml raises
            ``UnexpectedKeywordError``): a swept value the command never reads would be sampled for
            nothing.
    """
    from openaml.errors import ValidationError

    unknown = [k for k in kwargs if k not in cmd.inputs]
    if unknown:
        declared = ", ".join(sorted(cmd.inputs)) or "none"
        raise ValidationError(
            f"command(...)({unknown[0]}=...): {unknown[0]!r} is not an input of the command (its inputs: "
            f"{declared}); declare it in command(inputs={{{unknown[0]!r}: <default>}}) and read it with "
            f"${{{{inputs.{unknown[0]}}}}} in the command, or fix the name",
            details={"field": f"inputs.{unknown[0]}", "value": unknown[0]})
    new = cmd.model_copy(deep=True)
    space = dict(cmd._search_space or {})
    inputs = dict(new.inputs)
    literal: dict[str, Any] = {}
    for key, value in kwargs.items():
        if isinstance(value, _Dist):
            space[key] = value
        else:
            literal[key] = value
    if literal:
        inputs.update(normalize_inputs(literal))
    new.inputs = inputs
    new._search_space = space
    return new


def command_to_sweep(cmd: Any, *, primary_metric: str, goal: str, sampling_algorithm: Any = "random",
                     compute: str | None = None, max_concurrent_trials: int | None = None,
                     max_total_trials: int | None = None, timeout: int | None = None,
                     trial_timeout: int | None = None, early_termination_policy: Any = None,
                     search_space: dict[str, Any] | None = None, identity: Any = None,
                     queue_settings: Any = None, job_tier: str | None = None, priority: str | None = None) -> SweepJob:
    """``command(...)(...).sweep(...)`` -> :class:`SweepJob` (azure-ai-ml ``Command.sweep``).

    Inputs that are swept leave ``inputs``; ``${{inputs.x}}`` of a swept ``x`` becomes
    ``${{search_space.x}}`` in the trial command.
    """
    space = {**(cmd._search_space or {}), **(search_space or {})}
    command = cmd.command
    for key in space:
        command = re.sub(r"\$\{\{\s*inputs\." + re.escape(key) + r"\s*\}\}", "${{search_space." + key + "}}",
                         command)
    trial = TrialCommand(command=command, code=cmd.code, environment=cmd.environment,
                         environment_variables=cmd.environment_variables, resources=cmd.resources,
                         distribution=cmd.distribution)
    qs = dict(queue_settings or {}) if isinstance(queue_settings, dict) else None
    if job_tier or priority:
        qs = {**(qs or {}), **({"job_tier": job_tier} if job_tier else {}), **({"priority": priority} if priority else {})}
    try:  # dicts, not entities: a wrong value is reported at its sweep field (objective.goal, ...)
        job = SweepJob(
            trial=trial, inputs={k: v for k, v in cmd.inputs.items() if k not in space}, outputs=cmd.outputs,
            compute=compute or cmd.compute, display_name=cmd.display_name, experiment_name=cmd.experiment_name,
            description=cmd.description, tags=cmd.tags, properties=cmd.properties, search_space=space,
            sampling_algorithm=sampling_algorithm,
            objective={"goal": goal, "primary_metric": primary_metric},  # type: ignore[arg-type]  # validated
            early_termination=early_termination_policy,
            limits={"max_total_trials": max_total_trials,  # type: ignore[arg-type]  # validated by pydantic
                    "max_concurrent_trials": max_concurrent_trials, "timeout": timeout, "trial_timeout": trial_timeout},
            identity=identity if isinstance(identity, dict) else None, queue_settings=qs)
    except pydantic.ValidationError as exc:
        raise validation_error_from_pydantic(exc, source=None, lines=None, kind="sweep job") from None
    job._base_path = cmd._base_path
    job._source = cmd._source
    return job
