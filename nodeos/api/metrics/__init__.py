"""Usage figures through the API server: the ``metrics.k8s.io`` group's documents and the agents it asks.

``convert`` turns the agents' Summary API documents into metrics-server's
NodeMetrics and PodMetrics, ``agents`` asks the nodes' agents for them; the
HTTP side is ``nodeos.api.http.metrics`` (``MetricsApi``), so that
``kubectl top`` works with no metrics-server.
"""

from nodeos.api.metrics.convert import API_VERSION, GROUP, VERSION, api_group, resource_list

__all__ = ["API_VERSION", "GROUP", "VERSION", "api_group", "resource_list"]
