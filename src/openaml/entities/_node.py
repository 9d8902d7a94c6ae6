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
    """A component bound to inputs; ``compute``, ``environment_variables``, ``limits.timeout``,
    ``display_name`` and ``outputs.<name>.mode/path`` may be set before the pipeline returns."""

    def __init__(self, component: Any, inputs: dict[str, Any]) -> None:
        self.component = component
        self.inputs = inputs
        self.name: str | None = None
        self.compute: str | None = None
        self.display_name: str | None = None
        self.environment_variables: dict[str, str] = {}
        self.limits = _Limits()
        self.outputs = _Outputs(self, list(component.outputs))

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

    def set_limits(self, *, max_total_trials: int | None = None, max_concurrent_trials: int | None = None,
                   timeout: int | None = None, trial_timeout: int | None = None) -> None:
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
    builder = current_builder()
    if builder is not None:
        builder.add(node)
    return node
