"""The pipeline node classes, which live with the entities (:mod:`openaml.entities._node`)."""

from __future__ import annotations

from openaml.entities._node import (
    _BUILDERS,
    Node,
    NodeOutput,
    PipelineInput,
    SweepNode,
    current_builder,
    make_node,
)

__all__ = ["Node", "NodeOutput", "PipelineInput", "SweepNode", "make_node", "current_builder", "_BUILDERS"]
