"""nodeos: a cluster node appliance with a Kubernetes-compatible API."""

__version__ = "0.1.0"
