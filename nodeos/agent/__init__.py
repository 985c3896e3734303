"""The node agent: registers a node, heartbeats, and runs the pods bound to it.

``NodeAgent`` is one node; ``run_simulated_nodes`` runs many simulated ones
in one process. Runtimes sit behind the small ``Runtime`` protocol
(``nodeos.agent.runtime``): for now only ``SimulatedRuntime``, which runs
nothing; Podman comes with the node agent issue.
"""

from nodeos.agent.agent import NodeAgent
from nodeos.agent.simulated import run_simulated_nodes

__all__ = ["NodeAgent", "run_simulated_nodes"]
