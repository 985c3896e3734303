"""``nodeos sandbox``: a multi-host cluster on one machine, with network namespaces as hosts.

A master (role "all", so it runs pods too) and N workers, each in its own
network namespace, joined by a bridge in the root namespace (the
"underlay"), each with its own data directory, nodeos daemon and managed
Podman service on storage of its own. The root namespace stands for
"outside the cluster": it reaches the master's API and the NodePorts over
the bridge. It is both a way to try a real multi-node cluster on a laptop
and the harness of the networking tests.

    layout      names derived from the directory; the state file
    underlay    the bridge, the namespaces, their veths
    hostconfig  each host's nodeos TOML, containers.conf and storage.conf; the kubeconfig
    processes   the daemons as detached processes; leftovers
    podman      loading images into each host's Podman; emptying it
    lifecycle   up, load, status, down
"""

from nodeos.sandbox.layout import Host, Sandbox
from nodeos.sandbox.lifecycle import down, load, status, up
from nodeos.sandbox.system import SandboxError

__all__ = ["Host", "Sandbox", "SandboxError", "down", "load", "status", "up"]
