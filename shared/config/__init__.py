"""The topology and policy model, loaded once with clear errors on bad input."""

from shared.config.loader import TopologyError, get_topology, json_schema, load_topology, parse_topology
from shared.config.model import Topology

__all__ = ["Topology", "TopologyError", "get_topology", "json_schema", "load_topology", "parse_topology"]
