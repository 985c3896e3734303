"""Container runtimes behind the agent's small ``Runtime`` protocol."""

from nodeos.agent.runtime.base import ContainerState, PodState, Runtime

__all__ = ["ContainerState", "PodState", "Runtime"]
