"""The RAI gate on promotion (an openaml extension; Azure ML has no such gate): a model version carries
its Responsible AI score card's verdict, and a workspace policy makes promotion require a passing one.

Verdict (model version tags, docs/guide/rai.md "Studio, explanations and the promotion gate"):

- ``rai.scorecard``: ``<job>/<output>``, the ``scorecard`` output of a job that ran the built-in
  ``rai_tabular_score_card`` component, fed by the built-in gather and constructor (each job's record
  is checked: the component's command unchanged, no code of its own, the built-in environment; any
  other output is refused naming why), whose dashboard names this model version (the constructor's
  ``model_input`` is that registered version). Link it once the version exists (``openaml model update
  --set tags.rai.scorecard=...``): a version being registered has no score card yet;
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
import re
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
    #: the workspace's standard (review G3: the caller's pdf_generation_config may check nothing, or
    #: little): each ``<metric><op><threshold>`` (``accuracy_score>=0.8``, ``selection_rate_difference(Sex)<=0.1``)
    #: is judged on the value the score card's dashboard measured, whatever the card's own config says
    required_checks: list[str] = pydantic.Field(default_factory=list)
    #: the data asset (``name:version``) the constructor's ``test_dataset`` must be
    test_data: str | None = None
    #: the fewest test rows the dashboard may have been computed on
    min_test_rows: int | None = pydantic.Field(default=None, ge=1)

    @pydantic.field_validator("required_checks")
    @classmethod
    def _checks_parse(cls, value: list[str]) -> list[str]:
        for text in value:
            _required(text)
        return value

    @pydantic.field_validator("test_data")
    @classmethod
    def _pinned(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        m = _DATA_REF.match(value if value.startswith("azureml:") else f"azureml:{value}")
        if not m:
            raise ValueError(f"{value!r} is not a data asset with its version, name:version (e.g. titanic-test:1)")
        return f"{m['n1'] or m['n2']}:{m['v1'] or m['v2']}"


#: ``<metric><op><threshold>`` of a policy's required check
_REQUIRED = re.compile(r"^\s*(?P<metric>[A-Za-z_][\w().-]*?)\s*(?P<op>>=|<=|==|>|<)\s*(?P<thr>-?[0-9.]+(?:e-?[0-9]+)?)\s*$")


def _required(text: str) -> tuple[str, str, float]:
    """``accuracy_score>=0.8`` -> ``("accuracy", ">=", 0.8)`` (Azure's metric names, as in a score card
    config, or the dashboard's own)."""
    from openaml.rai._gather import _AZURE_METRIC

    m = _REQUIRED.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a check like 'accuracy_score>=0.8' or 'selection_rate_difference(Sex)<=0.1'")
    try:
        threshold = float(m["thr"])
    except ValueError:
        raise ValueError(f"{text!r}: threshold {m['thr']!r} is not a number") from None
    metric = m["metric"]
    base, paren, rest = metric.partition("_difference(") if "_difference(" in metric else metric.partition("_ratio(")
    if paren:  # a fairness check: <metric>_<kind>(<column>)
        kind = "difference" if "_difference(" in metric else "ratio"
        metric = f"{_AZURE_METRIC.get(base, base)}_{kind}({rest}"
    else:
        metric = _AZURE_METRIC.get(metric, metric)
    return metric, m["op"], threshold


def _same_model(model: dict[str, Any], name: str, version: str | None, ref: str) -> None:
    """The score card must name model ``name`` version ``version`` (review16 F9: always)."""
    if str(model.get("name")) != name or version is None or str(model.get("version")) != str(version):
        shown = f"{model.get('name')}:{model.get('version')}" if model.get("name") else "no model version"
        raise ValidationError(f"tag {TAG_SCORECARD}={ref!r}: that score card is of {shown}, not {name}:"
                              f"{version or '(new)'}; a score card is linked to the version it was computed on "
                              "(the RAI pipeline's constructor model_input/model_info)",
                              details={"field": f"tags.{TAG_SCORECARD}"})


def _check_text(c: dict[str, Any]) -> str:
    value = c.get("value")
    shown = f"{value:.4g}" if isinstance(value, int | float) else str(value)
    return f"{c.get('metric')} = {shown} (must be {c.get('op')} {c.get('threshold')}" + \
        (", the workspace's RAI policy)" if c.get("policy") else ")")


# ------------------------------------------------------------------ provenance (review16 F7)
#: environment variables a trusted RAI step may not set: they change what Python imports or runs, or
#: where the constructor downloads the model from
#: the only job variable a trusted step may set (it keeps the step out of the warm process); any other
#: may change what the shell or Python runs (``BASH_ENV``, ``BASH_FUNC_python%%``, ``PYTHON*``, ``LD_*``...)
_ALLOWED_ENV = ("OPENAML_RAI_WARM",)
#: characters no input of a trusted step may hold: the command template puts values in single quotes
#: (or bare, for enums and integers), so a quote or a line break would end the value and start a command
_UNSAFE_VALUE = re.compile(r"['\n\r\x00]")
_BARE_SAFE = re.compile(r"^[A-Za-z0-9_.:+-]*$")
_BARE_INPUT = re.compile(r"(?<!')\$\{\{\s*inputs\.(\w+)\s*\}\}")
_CONSTRUCTOR, _GATHER, _SCORE_CARD = ("rai_tabular_insight_constructor", "rai_tabular_insight_gather",
                                      "rai_tabular_score_card")
_JOB_OUTPUT = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)/?$")
_DATA_REF = re.compile(r"^azureml:(?://(?:.*/)?data/(?P<n1>[^/:]+)/versions/(?P<v1>[^/]+)|"
                       r"(?P<n2>[^/:@]+):(?P<v2>[^/:@]+))/?$")
_MODEL_REF = re.compile(r"^azureml:(?://(?:.*/)?models/(?P<n1>[^/:]+)/versions/(?P<v1>[^/]+)|"
                        r"(?P<n2>[^/:@]+):(?P<v2>[^/:@]+))/?$")


def _builtin_commands(component: str) -> set[str]:
    """The command templates of every version of built-in ``component`` (both its published names)."""
    from openaml.rai.registry import builtin_components

    names = (component, f"microsoft_azureml_{component}")
    return {str(c["command"]) for c in builtin_components() if c["name"] in names}


class _Provenance:
    """Checks that a score card was written by the built-in chain constructor -> gather -> score card
    (review16 F7), from the job records: ``spec.command`` equal to the built-in component's command
    template, no code (``runtime.code_dir``), no environment variable that changes what Python imports,
    the built-in components' environment (``runtime.environment``), Completed, outputs at the job's own
    place, and each input an ``azureml://jobs/<job>/outputs/<output>`` of the previous built-in step.

    Raises ValidationError naming the job, the output and what is not the built-in's."""

    def __init__(self, ctx: Any, ref: str) -> None:
        self.ctx, self.ref = ctx, ref
        #: the constructor job's record, once :meth:`check` found it
        self.constructor: dict[str, Any] = {}

    def _fail(self, job: str, output: str, component: str, why: str) -> NoReturn:
        raise ValidationError(f"tag {TAG_SCORECARD}={self.ref!r}: {output} of job {job!r} was not written "
                              f"by the built-in RAI {component} component ({why}); link the score card output of a "
                              f"pipeline of the azureml registry's {_CONSTRUCTOR}, {_GATHER} and {_SCORE_CARD}",
                              details={"field": f"tags.{TAG_SCORECARD}"})

    def step(self, job: str, output: str, component: str, outputs: tuple[str, ...]) -> dict[str, Any]:
        """The record of the job that wrote ``job``'s ``output`` (a reused pipeline step: the step it
        reuses), after checking that it ran the built-in ``component`` unchanged."""
        try:
            row = dict(self.ctx.store.get_job(job))
            seen = {job}
            while (row.get("runtime") or {}).get("reused_from"):
                earlier = str(row["runtime"]["reused_from"])
                if earlier in seen:
                    self._fail(job, f"output {output!r}", component, "its reuse chain loops")
                seen.add(earlier)
                row = dict(self.ctx.store.get_job(earlier))
        except NotFoundError:
            self._fail(job, f"output {output!r}", component, "no such job")
        spec, runtime = row.get("spec") or {}, row.get("runtime") or {}
        name = row.get("name", job)
        if spec.get("type", "command") != "command" or spec.get("command") not in _builtin_commands(component):
            self._fail(job, f"output {output!r}", component, f"job {name!r} runs another command: {spec.get('command')!r}")
        if output not in outputs:
            self._fail(job, f"output {output!r}", component, f"it is not its output {' or '.join(outputs)}")
        if runtime.get("code_dir") or spec.get("code"):
            self._fail(job, f"output {output!r}", component, f"job {name!r} runs code of its own: {spec.get('code')!r}")
        unsafe = sorted(str(k) for k in spec.get("environment_variables") or {} if str(k) not in _ALLOWED_ENV)
        if unsafe:
            self._fail(job, f"output {output!r}", component, f"job {name!r} sets environment variables {unsafe}")
        self._plain_inputs(job, output, component, name, spec)
        want, env = self._environment(component), runtime.get("environment") or {}
        if (env.get("kind"), env.get("spec_hash")) != (want.get("kind"), want.get("spec_hash")):
            self._fail(job, f"output {output!r}", component, f"job {name!r} runs in environment "
                       f"{env.get('ref') or env.get('source')!r}, not the built-in components' "
                       f"{want.get('ref') or want.get('source')!r}")
        if str(row.get("status")) != "Completed":
            self._fail(job, f"output {output!r}", component, f"job {name!r} is {row.get('status')}, not Completed")
        declared = (spec.get("outputs") or {}).get(output)
        if isinstance(declared, dict) and declared.get("path"):  # another job could write that place too
            self._fail(job, f"output {output!r}", component,
                       f"the output is written to a path of the caller's: {declared['path']!r}")
        store = declared.get("datastore") if isinstance(declared, dict) else None
        if store and store != self.ctx.services["datastores"].default_name():  # files the caller may change
            self._fail(job, f"output {output!r}", component,
                       f"the output is written to datastore {store!r}, not the workspace's default")
        return {**row, "_component": component}

    def _plain_inputs(self, job: str, output: str, component: str, name: str, spec: dict[str, Any]) -> None:
        """Each input's value or path stays one argument of the command: no quote or line break, and a
        bare placeholder's value (an enum, an integer) only letters, digits and ``_.:+-``."""
        bare = set(_BARE_INPUT.findall(str(spec.get("command") or "")))
        for key, value in (spec.get("inputs") or {}).items():
            texts = [value] if not isinstance(value, dict) else [value.get(k) for k in ("value", "path", "default")]
            for text in (str(t) for t in texts if t is not None):
                if _UNSAFE_VALUE.search(text) or (key in bare and not _BARE_SAFE.match(text)):
                    self._fail(job, f"output {output!r}", component, f"job {name!r} has input {key!r} = {text!r}, "
                               "which the command line would not keep as one argument")

    def _environment(self, component: str) -> dict[str, Any]:
        from openaml.rai.registry import builtin_component

        env = builtin_component("azureml", component).get("environment")
        return dict(self.ctx.services["environments"].resolve_for_job(env))

    def fed_by(self, row: dict[str, Any], field: str, allowed: dict[str, tuple[str, ...]]) -> dict[str, Any]:
        """The record of the built-in job (one of ``allowed``: component -> its outputs) whose output
        feeds ``row``'s input ``field``."""
        value = ((row.get("spec") or {}).get("inputs") or {}).get(field)
        path = value.get("path") if isinstance(value, dict) else value
        m = _JOB_OUTPUT.match(str(path or ""))
        if not m:
            self._fail(row["name"], "the output", row["_component"], f"its input {field!r} is {path!r}, "
                       f"not an output of a built-in {' or '.join(allowed)} job (azureml://jobs/<job>/outputs/<output>)")
        first: ValidationError | None = None
        for component, outputs in allowed.items():
            try:
                return self.step(m["job"], m["output"], component, outputs)
            except ValidationError as e:
                first = first or e
        assert first is not None
        raise first

    def check(self, job: str, output: str, model: dict[str, Any]) -> dict[str, Any]:
        """Check the score card ``job``/``output``, its chain, and that the constructor loaded the
        registered model version the card names (``model_input``: ``azureml:<name>:<version>``, or
        none: the constructor downloads ``model_info``'s version itself). Returns the record of the job
        that wrote the score card (for a reused step: the step it reuses)."""
        card = self.step(job, output, _SCORE_CARD, ("scorecard",))
        fed = self.fed_by(card, "dashboard", {_GATHER: ("dashboard", "ux_json"),
                                              _CONSTRUCTOR: ("rai_insights_dashboard",)})
        constructor = fed if fed["_component"] == _CONSTRUCTOR else \
            self.fed_by(fed, "constructor", {_CONSTRUCTOR: ("rai_insights_dashboard",)})
        self.constructor = constructor
        value = ((constructor.get("spec") or {}).get("inputs") or {}).get("model_input")
        path = value.get("path") if isinstance(value, dict) else value
        if path is None:
            return card
        m = _MODEL_REF.match(str(path))
        got = (m["n1"] or m["n2"], m["v1"] or m["v2"]) if m else None
        if got != (str(model.get("name")), str(model.get("version"))):
            self._fail(constructor["name"], "output 'rai_insights_dashboard'", _CONSTRUCTOR,
                       f"its input 'model_input' is {path!r}, not the registered model version the dashboard names, "
                       f"azureml:{model.get('name')}:{model.get('version')}")
        return card


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
        for key in ("protected_tags", "protected_stages", "protected_aliases", "deployments", "required_checks"):
            if isinstance(merged.get(key), str):
                merged[key] = [merged[key]]
        try:
            policy = RaiGatePolicy.model_validate(merged)
        except pydantic.ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ValidationError(f"rai_gate.{field}: {err['msg']} (got {err.get('input')!r}); the fields are "
                                  "require (pass or none), protected_tags, protected_stages, protected_aliases, "
                                  "deployments (online, batch), required_checks ([accuracy_score>=0.8, ...]), "
                                  "test_data (name:version), min_test_rows", details={"field": f"rai_gate.{field}"}) \
                from None
        self.ctx.store.set_meta(POLICY_KEY, policy.model_dump_json())
        return policy

    # ------------------------------------------------------------------ verdict
    def read_scorecard(self, ref: str, *, name: str | None = None, version: str | None = None) -> dict[str, Any]:
        """The score card at ``<job>/<output>``: ``{"verdict", "checks", "model"}``.

        Trusted only when the output was written by the built-in ``rai_tabular_score_card`` component,
        fed by the built-in gather and constructor (:class:`_Provenance`, review16 F7), and when it names
        the model ``name`` version ``version`` (review16 F9; ``version`` None, a version not registered
        yet, has no score card: refused).

        Raises:
            ValidationError: ``ref`` is not ``<job>/<output>``; the output is not a built-in score card's,
                holds no score card, or is another model's or version's.
            NotFoundError: unknown job or output.
        """
        job, sep, output = str(ref).strip().partition("/")
        field = {"field": f"tags.{TAG_SCORECARD}"}
        if not sep or not job or not output or "/" in output:
            raise ValidationError(f"tag {TAG_SCORECARD}={ref!r}: write <job name>/<output name> (the score card "
                                  "step's output, e.g. <pipeline>-scorecard_01/scorecard)", details=field)
        if name is not None and version is None:
            raise ValidationError(f"tag {TAG_SCORECARD}={ref!r}: a version being registered has no score card yet "
                                  "(a score card names the version it was computed on); register the version, run "
                                  "the RAI pipeline on it, then link its score card with openaml model update -n "
                                  f"{name} -v <version> --set tags.{TAG_SCORECARD}=<job>/<output>", details=field)
        folder = Path(self.ctx.services["jobs"].output_dir(job, output))
        for file in ("dashboard.json", "scorecard.json"):  # the dashboard names its model
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
                model = model if isinstance(model, dict) else {}
                provenance = _Provenance(self.ctx, str(ref))
                writer = provenance.check(job, output, model)
                self._unchanged(writer, output, path, str(ref))
                if name is not None:
                    _same_model(model, name, version, str(ref))
                checks = [c for c in card.get("checks") or [] if isinstance(c, dict)]
                policy = self.get_policy()
                standard = self._standard(policy, card, data if file == "dashboard.json" else {},
                                          provenance.constructor)
                if not checks and not policy.required_checks:
                    # a config without thresholds checks nothing, and the workspace asks nothing: nothing was passed
                    checks = [{"metric": "checks in the score card", "value": 0, "op": ">=", "threshold": 1,
                               "passed": False}]
                checks += standard
                verdict = "pass" if card["verdict"] == "pass" and all(c.get("passed") for c in checks) else "fail"
                return {"verdict": verdict, "checks": checks, "model": model}
        raise ValidationError(f"tag {TAG_SCORECARD}={ref!r}: output {output!r} of job {job!r} holds no score card "
                              "(the rai_tabular_score_card step's scorecard output)", details=field)

    @staticmethod
    def _standard(policy: RaiGatePolicy, card: dict[str, Any], dashboard: dict[str, Any],
                  constructor: dict[str, Any]) -> list[dict[str, Any]]:
        """The policy's own checks (review G3), judged on what the dashboard measured: each
        ``required_checks`` entry on the metric's value (the card's checks and reported values, then the
        dashboard's overall metrics; a metric found nowhere fails), ``test_data`` on the constructor's
        ``test_dataset`` input and ``min_test_rows`` on the dashboard's test rows. Each is a check
        ``{"metric", "value", "op", "threshold", "passed", "policy": True}``."""
        from openaml.rai._gather import _passes

        out: list[dict[str, Any]] = []
        if policy.required_checks:
            values: dict[str, Any] = dict((dashboard.get("metrics") or {}).get("overall") or {})
            for c in [*(card.get("reported") or []), *(card.get("checks") or [])]:
                if isinstance(c, dict) and "metric" in c:
                    values[str(c["metric"])] = c.get("value")
            for text in policy.required_checks:
                metric, op, threshold = _required(text)
                value = values.get(metric)
                passed = isinstance(value, int | float) and _passes(float(value), op, threshold)
                out.append({"metric": metric, "op": op, "threshold": threshold, "policy": True, "passed": passed,
                            "value": value if value is not None else "not measured by this score card"})
        if policy.test_data:
            value = ((constructor.get("spec") or {}).get("inputs") or {}).get("test_dataset")
            path = str((value.get("path") if isinstance(value, dict) else value) or "")
            m = _DATA_REF.match(path)
            got = f"{m['n1'] or m['n2']}:{m['v1'] or m['v2']}" if m else path
            out.append({"metric": "the constructor's test_dataset", "op": "==", "threshold": policy.test_data,
                        "value": got, "policy": True, "passed": got == policy.test_data})
        if policy.min_test_rows:
            rows = (dashboard.get("test") or {}).get("n_rows")
            out.append({"metric": "test rows", "op": ">=", "threshold": policy.min_test_rows, "policy": True,
                        "value": rows, "passed": isinstance(rows, int) and rows >= policy.min_test_rows})
        return out

    def _unchanged(self, writer: dict[str, Any], output: str, path: Path, ref: str) -> None:
        """The score card file is as the job that wrote it (``writer``: a reused step's original, whose
        end is when the file was written) left it: not written later by another job to that place."""
        end, job = writer.get("end_time"), writer.get("name")
        if end is None or path.stat().st_mtime > end.timestamp() + 5:
            raise ValidationError(f"tag {TAG_SCORECARD}={ref!r}: {path.name} of output {output!r} of job {job!r} "
                                  "was changed after the job ended; run the score card step again",
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
        if stage and stage.lower() in {s.lower() for s in policy.protected_stages}:  # MLflow ignores case
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
        if version is None:  # review16 F9: a score card names the version it was computed on
            self._refuse(shown, action, "a version being registered has no score card yet; register the version "
                         "without the protected tag or stage, run the RAI pipeline on it (its constructor's "
                         f"model_input azureml:{name}:<version>), link the score card with openaml model update "
                         f"-n {name} -v <version> --set tags.{TAG_SCORECARD}=<job>/<output>, then set the tag",
                         None, None)
        ref = tags.get(TAG_SCORECARD)
        if not ref:
            link = f"openaml model update -n {name} -v {version} --set tags.{TAG_SCORECARD}=<job>/<output>"
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
        ``rai.failed`` are the server's and cannot be set there at all; ``rai.scorecard`` is linked
        through openaml only (which derives the other two), and none of the three is deleted through
        MLflow (``model-versions/delete-tag``). While the gate is on, ``registered-models/rename``,
        ``registered-models/delete`` and ``model-versions/delete`` are refused: a score card names its
        model version by name and number, which another model could take over.

        Raises:
            ValidationError: a score card tag set or deleted through MLflow (HTTP 400).
            ConflictError: the gate refuses (HTTP 409, the failing checks named), as :meth:`check`; a
            model deleted or renamed while the gate is on.
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
        link = (f"openaml model update -n {name or '<name>'} -v {version or '<version>'} --set "
                f"tags.{TAG_SCORECARD}=<job>/<output>")
        if TAG_SCORECARD in tags:  # review G9: MLflow would store it without rai.verdict/rai.failed in step
            raise ValidationError(f"tag {TAG_SCORECARD!r} is linked through openaml, which checks the score card and "
                                  f"writes rai.verdict and rai.failed from it: {link}",
                                  details={"field": f"tags.{TAG_SCORECARD}"})
        if endpoint == "model-versions/delete-tag" and str(body.get("key")) in (TAG_SCORECARD, *_DERIVED):
            raise ValidationError(f"tag {body.get('key')!r} of a version's score card is not removed through MLflow "
                                  f"(rai.verdict would no longer match it); link another score card with {link}",
                                  details={"field": f"tags.{body.get('key')}"})
        if endpoint in ("registered-models/rename", "registered-models/delete", "model-versions/delete") \
                and self.get_policy().require is not None:
            # review G7: a score card names its model by name and version; a deleted or renamed model
            # lets another model take that name and version, and with it a passing card
            raise ConflictError(f"{endpoint}: while the workspace's RAI gate is on, models are not deleted or "
                                f"renamed through MLflow (a score card names the model version it was computed "
                                f"on, and another model could take model {name!r}'s name); archive instead: "
                                f"openaml model archive -n {name or '<name>'}",
                                details={"model": name, "endpoint": endpoint})
        if "openaml.stage" in tags:  # openaml's stage: through MLflow it would be a stage by another name
            raise ValidationError("tag 'openaml.stage' is the server's: set a stage with openaml model update "
                                  "--stage or MLflow's transition-stage", details={"field": "tags.openaml.stage"})
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
            verb = "be registered with" if endpoint == "model-versions/create" else "get"
            self.check(name, version, {**current, **tags}, f"{verb} {', '.join(hits)} (through MLflow's API)")
