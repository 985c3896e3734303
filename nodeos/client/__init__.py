"""The one way every nodeos component talks to the API server.

``load_connection`` finds the server and credentials (kubeconfig rules),
``ApiClient`` makes the calls, ``Informer`` keeps a watched cache, and
``WorkQueue`` feeds keys to reconcile loops.
"""

from nodeos.client.api import ApiClient, ApiObject, ApiUnavailable
from nodeos.client.informer import Informer, object_key, split_key
from nodeos.client.kubeconfig import Connection, load_connection
from nodeos.client.workqueue import WorkQueue

__all__ = [
    "ApiClient",
    "ApiObject",
    "ApiUnavailable",
    "Connection",
    "Informer",
    "WorkQueue",
    "load_connection",
    "object_key",
    "split_key",
]
