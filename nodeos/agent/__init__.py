"""The node agent: registers a node, heartbeats, and runs the pods bound to it.

``NodeAgent`` is one node; ``run_simulated_nodes`` runs many simulated ones
in one process. Runtimes sit behind the small ``Runtime`` protocol
(``nodeos.agent.runtime``): ``PodmanRuntime`` (``nodeos.agent.podman``) runs
real Podman pods, ``SimulatedRuntime`` runs nothing (tests and scale).
"""

from nodeos.agent.agent import NodeAgent
from nodeos.agent.simulated import run_simulated_nodes

__all__ = ["NodeAgent", "run_simulated_nodes"]
