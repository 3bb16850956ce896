"""The declarative model of a desk: load (YAML, env, positions), check, plan."""

from tradeops.topology.check import CheckOptions, check
from tradeops.topology.findings import Finding, Severity
from tradeops.topology.load import Loaded, TopologyError, load, load_topology
from tradeops.topology.model import Topology
from tradeops.topology.plan import Group, groups

__all__ = [
    "CheckOptions",
    "Finding",
    "Group",
    "Loaded",
    "Severity",
    "Topology",
    "TopologyError",
    "check",
    "groups",
    "load",
    "load_topology",
]
