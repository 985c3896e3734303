"""Image pull policy defaults, as Kubernetes sets them."""

from __future__ import annotations

import pytest

from nodeos.agent.podman.images import pull_policy


@pytest.mark.parametrize(("image", "given", "policy"), [
    ("busybox", None, "Always"),                       # no tag means :latest
    ("busybox:latest", None, "Always"),
    ("registry:5000/team/app", None, "Always"),          # a port is not a tag
    ("registry:5000/team/app:1.2", None, "IfNotPresent"),
    ("localhost/nodeos-test/busybox:1", None, "IfNotPresent"),
    ("app@sha256:" + "a" * 64, None, "IfNotPresent"),    # a digest never changes
    ("busybox", "Never", "Never"),
    ("busybox:1", "Always", "Always"),
    ("busybox:1", "Sometimes", "IfNotPresent"),          # not a policy: the default for the image
])
def test_pull_policy(image, given, policy):
    container = {"image": image, **({"imagePullPolicy": given} if given else {})}
    assert pull_policy(container) == policy
