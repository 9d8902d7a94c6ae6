"""Pipeline nodes built by calling components inside ``@dsl.pipeline`` (azure-ai-ml behaviour).

Value objects of the pipeline graph, here so that calling a component (an entity) can make a node
without the entities importing the DSL; :mod:`openaml.dsl` builds pipelines from them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Node", "NodeOutput", "PipelineInput", "SweepNode", "make_node", "current_builder"]

_BUILDERS: list[Any] = []


def current_builder() -> Any:
    return _BUILDERS[-1] if _BUILDERS else None


class PipelineInput:
    """A parameter of the pipeline function: binds as ``${{parent.inputs.<name>}}``."""

    def __init__(self, name: str, value: Any) -> None:
        self._name = name
        self._value = value

    def _binding(self) -> str:
        return f"${{{{parent.inputs.{self._name}}}}}"

    def __repr__(self) -> str:
        return f"PipelineInput({self._name!r})"


class NodeOutput:
    """``node.outputs.<name>``: feeds other nodes; ``mode``/``path``/``type`` set node-level overrides."""

    def __init__(self, node: Node, name: str) -> None:
        self._node = node
        self._port = name
        self.mode: str | None = None
        self.path: str | None = None
        self.type: str | None = None

    def _binding(self) -> str:
        if self._node.name is None:
            raise ValueError("a node output was used outside of a @dsl.pipeline function")
        return f"${{{{parent.jobs.{self._node.name}.outputs.{self._port}}}}}"

    def _override(self) -> dict[str, Any]:
        return {k: v for k, v in (("mode", self.mode), ("path", self.path), ("type", self.type)) if v}


class _Outputs:
    def __init__(self, node: Node, names: list[str]) -> None:
        self._ports = {n: NodeOutput(node, n) for n in names}

    def __getattr__(self, name: str) -> NodeOutput:
        try:
            return self.__dict__["_ports"][name]
        except KeyError:
            raise AttributeError(f"the component has no output {name!r}; outputs: "
                                 f"{', '.join(self.__dict__['_ports']) or 'none'}") from None

    def __getitem__(self, name: str) -> NodeOutput:
        return getattr(self, name)

    def items(self) -> Any:
        return self._ports.items()


class _Limits:
    def __init__(self) -> None:
        self.timeout: int | None = None


class Node:
    """A component bound to inputs; ``compute``, ``environment_variables``, ``limits.timeout``
    (or ``set_limits``), ``resources`` (``set_resources``), ``queue_settings`` (``set_queue_settings``),
    ``display_name`` and ``outputs.<name>.mode/path`` may be set before the pipeline returns."""

    def __init__(self, component: Any, inputs: dict[str, Any]) -> None:
        self.component = component
        self.inputs = inputs
        self.name: str | None = None
        self.compute: str | None = None
        self.display_name: str | None = None
        self.environment_variables: dict[str, str] = {}
        self.limits = _Limits()
        self.resources: dict[str, Any] | None = None
        self.queue_settings: dict[str, Any] | None = None
        self.outputs = _Outputs(self, list(component.outputs))

    def set_limits(self, *, timeout: int, **kwargs: Any) -> None:
        """The step's run-time limit in seconds (azure-ai-ml ``Command.set_limits(timeout=...)``, which
        Azure's RAI notebooks call on the RAI nodes). It lands in the step job's ``limits.timeout``: a
        step still running after ``timeout`` seconds is canceled, naming the limit, as a command job.

        Raises:
            ValidationError: ``timeout`` is not a positive whole number of seconds, or another limit
                is given (a command node has only ``timeout``; sweep nodes have their own).
        """
        from openaml.errors import ValidationError

        if kwargs:
            raise ValidationError(f"set_limits: a command node has only the limit 'timeout' (seconds); got "
                                  f"{', '.join(sorted(kwargs))}", details={"field": f"limits.{sorted(kwargs)[0]}"})
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
            raise ValidationError(f"set_limits: timeout must be a positive whole number of seconds (got {timeout!r})",
                                  details={"field": "limits.timeout", "value": repr(timeout)})
        self.limits.timeout = timeout

    def set_resources(self, *, instance_type: str | list[str] | None = None, instance_count: int | None = None,
                      locations: list[str] | None = None, properties: dict[str, Any] | None = None,
                      docker_args: str | None = None, shm_size: str | None = None, **kwargs: Any) -> None:
        """The step's ``resources`` (azure-ai-ml ``Command.set_resources``): the given fields are set,
        the others kept; they land in the step job's ``resources`` (here only ``instance_count``
        matters, with a distribution; see docs/differences.md "Command jobs").

        Raises:
            ValidationError: a field of the wrong type (e.g. ``instance_count`` below 1).
        """
        from openaml.entities._job import JobResources
        from openaml.errors import ValidationError

        given = {"instance_type": instance_type, "instance_count": instance_count, "locations": locations,
                 "properties": properties, "docker_args": docker_args, "shm_size": shm_size}
        merged = {**(self.resources or {}), **{k: v for k, v in given.items() if v is not None}}
        if isinstance(merged.get("instance_type"), list):  # Azure accepts a list of types; the first is used
            merged["instance_type"] = merged["instance_type"][0] if merged["instance_type"] else None
        try:
            JobResources.model_validate({k: v for k, v in merged.items() if v is not None})
        except ValueError as exc:
            raise ValidationError(f"set_resources: {exc}", details={"field": "resources"}) from None
        self.resources = {k: v for k, v in merged.items() if v is not None}

    def set_queue_settings(self, *, job_tier: str | None = None, priority: str | None = None) -> None:
        """The step's ``queue_settings`` (azure-ai-ml ``Command.set_queue_settings``): ``job_tier``
        (Spot, Basic, Standard, Premium) and ``priority`` (low, medium, high). Kept on the node;
        like a command job's, they change nothing here (no VM tiers; docs/differences.md).

        Raises:
            ValidationError: a ``job_tier`` or ``priority`` outside those values.
        """
        from openaml.errors import ValidationError

        for field, value, allowed in (("job_tier", job_tier, ("spot", "basic", "standard", "premium", "null")),
                                      ("priority", priority, ("low", "medium", "high"))):
            if value is not None and str(value).lower() not in allowed:
                raise ValidationError(f"set_queue_settings: {field} {value!r} is not one of {', '.join(allowed)}",
                                      details={"field": f"queue_settings.{field}", "value": value})
        self.queue_settings = {k: v for k, v in (("job_tier", job_tier), ("priority", priority)) if v is not None}

    def _to_node(self) -> dict[str, Any]:
        def value(v: Any) -> Any:
            if isinstance(v, (PipelineInput, NodeOutput)):
                return v._binding()
            if hasattr(v, "model_dump"):
                return v.model_dump(mode="json", exclude_none=True)
            return v

        ntype = "pipeline" if getattr(self.component, "type", "command") == "pipeline" else "command"
        nd: dict[str, Any] = {"type": ntype, "component": self.component,
                              "inputs": {k: value(v) for k, v in self.inputs.items()},
                              "outputs": {k: o._override() for k, o in self.outputs.items() if o._override()}}
        if self.compute:
            nd["compute"] = self.compute
        if self.display_name:
            nd["display_name"] = self.display_name
        if self.environment_variables:
            nd["environment_variables"] = dict(self.environment_variables)
        if self.limits.timeout:
            nd["limits"] = {"timeout": self.limits.timeout}
        if self.resources:
            nd["resources"] = dict(self.resources)
        if self.queue_settings:
            nd["queue_settings"] = dict(self.queue_settings)
        return nd


    def sweep(self, *, primary_metric: str, goal: str, sampling_algorithm: Any = "random", compute: str | None = None,
              max_total_trials: int | None = None, max_concurrent_trials: int | None = None,
              timeout: int | None = None, trial_timeout: int | None = None, early_termination_policy: Any = None,
              search_space: dict[str, Any] | None = None) -> SweepNode:
        """A sweep node over this node's component (azure-ai-ml ``Command.sweep`` inside a pipeline).

        The inputs given a distribution (``Choice``, ``Uniform`` ...) when the component was called,
        plus ``search_space``, are swept; the others are bound as usual. The node replaces this one
        in the pipeline; its outputs are the best trial's.
        """
        from openaml.entities._sweep import _Dist

        space = {k: v for k, v in self.inputs.items() if isinstance(v, _Dist)}
        space.update(search_space or {})
        node = SweepNode(self.component, {k: v for k, v in self.inputs.items() if k not in space})
        node.search_space = space
        node.objective = {"goal": str(goal).lower(), "primary_metric": primary_metric}
        node.sampling_algorithm = sampling_algorithm
        node.early_termination = early_termination_policy
        node.compute = compute or self.compute
        node.display_name = self.display_name
        node.environment_variables = dict(self.environment_variables)
        node.resources = dict(self.resources) if self.resources else None
        node.queue_settings = dict(self.queue_settings) if self.queue_settings else None
        node.set_limits(max_total_trials=max_total_trials, max_concurrent_trials=max_concurrent_trials,
                        timeout=timeout, trial_timeout=trial_timeout)
        builder = current_builder()
        if builder is not None:
            builder.nodes = [node if n is self else n for n in builder.nodes]
        return node


class SweepNode(Node):
    """``type: sweep`` node: ``set_limits(...)``, ``early_termination``, ``sampling_algorithm``."""

    def __init__(self, component: Any, inputs: dict[str, Any]) -> None:
        super().__init__(component, inputs)
        self.search_space: dict[str, Any] = {}
        self.objective: dict[str, Any] = {}
        self.sampling_algorithm: Any = "random"
        self.early_termination: Any = None
        self.sweep_limits: dict[str, Any] = {}

    def set_limits(  # type: ignore[override]
            self, *, max_total_trials: int | None = None, max_concurrent_trials: int | None = None,
            timeout: int | None = None, trial_timeout: int | None = None) -> None:
        """The sweep's limits (azure-ai-ml ``Sweep.set_limits``): the given ones are set, the others kept."""
        for k, v in (("max_total_trials", max_total_trials), ("max_concurrent_trials", max_concurrent_trials),
                     ("timeout", timeout), ("trial_timeout", trial_timeout)):
            if v is not None:
                self.sweep_limits[k] = v

    def _to_node(self) -> dict[str, Any]:
        def dump(v: Any) -> Any:
            return v.model_dump(mode="json", exclude_none=True) if hasattr(v, "model_dump") else v

        nd = super()._to_node()
        nd.pop("limits", None)
        nd["type"] = "sweep"
        nd["trial"] = nd.pop("component")
        nd["search_space"] = {k: dump(v) for k, v in self.search_space.items()}
        nd["objective"] = dict(self.objective)
        nd["sampling_algorithm"] = dump(self.sampling_algorithm)
        if self.early_termination is not None:
            nd["early_termination"] = dump(self.early_termination)
        if self.sweep_limits:
            nd["limits"] = dict(self.sweep_limits)
        return nd


def make_node(component: Any, kwargs: dict[str, Any]) -> Node:
    """Bind ``kwargs`` to ``component``'s inputs (a ``CommandComponent`` or ``command(...)`` job)."""
    from openaml.entities._component import PipelineComponent, as_component
    from openaml.errors import ValidationError

    comp = component if isinstance(component, PipelineComponent) else as_component(component)
    unknown = sorted(set(kwargs) - set(comp.inputs))
    if unknown:
        raise ValidationError(f"component {comp.name or 'command'}: no input(s) {', '.join(unknown)}; inputs: "
                              f"{', '.join(comp.inputs) or 'none'}", details={"field": f"inputs.{unknown[0]}"})
    node = Node(comp, {k: v for k, v in kwargs.items() if v is not None})
    from openaml.entities._job import CommandJob

    if isinstance(component, CommandJob):
        # a ``command(...)`` job as a node keeps its own run settings (azure-ai-ml's Command node):
        # the component holds what is shared, the node what this step was given
        job_env = getattr(component, "environment_variables", None)
        if job_env:
            node.environment_variables = dict(job_env)
        node.compute = getattr(component, "compute", None) or None
        node.display_name = getattr(component, "display_name", None) or None
        timeout = getattr(getattr(component, "limits", None), "timeout", None)
        if timeout:
            node.limits.timeout = timeout
        resources = getattr(component, "resources", None)
        if resources is not None:
            node.resources = resources.model_dump(mode="json", exclude_none=True) or None
        queue = getattr(component, "queue_settings", None)
        if queue:
            node.queue_settings = dict(queue)
    builder = current_builder()
    if builder is not None:
        builder.add(node)
    return node
