"""The resource graph, shared by the renderer (which builds it) and the engine (which plans and
applies it): resources, references between them, dependency order and cycles."""

from opsgit.graph.model import GRAPH_FORMAT, Graph, Resource
from opsgit.graph.order import find_cycle, topological_order

__all__ = ["GRAPH_FORMAT", "Graph", "Resource", "find_cycle", "topological_order"]
