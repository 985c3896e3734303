"""Image pull policy, as the kubelet applies it.

``Always`` pulls every time a container starts, ``IfNotPresent`` only when
the image is missing, ``Never`` never (and a missing image is then an
error). The default follows Kubernetes: ``Always`` for an image without a
tag or tagged ``:latest``, ``IfNotPresent`` otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nodeos.agent.podman.client import LibpodClient, PodmanError

__all__ = ["ImageProblem", "ensure_image", "pull_policy"]


@dataclass
class ImageProblem(Exception):
    """The image cannot be had: ``reason`` is the waiting reason (ErrImagePull, ErrImageNeverPull, InvalidImageName)."""

    reason: str
    message: str

    def __str__(self) -> str:
        return self.message


def pull_policy(container: dict[str, Any]) -> str:
    policy = container.get("imagePullPolicy")
    if policy in ("Always", "IfNotPresent", "Never"):
        return policy
    image = container.get("image") or ""
    name = image.split("@", 1)[0]
    tagged = ":" in name.rsplit("/", 1)[-1]
    return "Always" if "@" not in image and (not tagged or name.endswith(":latest")) else "IfNotPresent"


async def ensure_image(client: LibpodClient, container: dict[str, Any],
                       on_pulling: Callable[[], Awaitable[None]] | None = None) -> tuple[dict, bool]:
    """The image's inspect data and whether it was pulled now; raises ImageProblem when it can't be had.

    ``on_pulling`` (an async callable) runs before a pull starts, for the Pulling event.
    """
    image = container.get("image") or ""
    if not image or image != image.strip():
        raise ImageProblem("InvalidImageName", f'invalid image name "{image}"')
    policy = pull_policy(container)
    present = await client.image_inspect(image)
    if present is not None and policy != "Always":
        return present, False
    if policy == "Never":
        raise ImageProblem("ErrImageNeverPull",
                           f'Container image "{image}" is not present with pull policy of Never')
    if on_pulling is not None:
        await on_pulling()
    try:
        await client.pull(image)
    except PodmanError as exc:
        raise ImageProblem("ErrImagePull", f'failed to pull image "{image}": {exc}') from None
    inspected = await client.image_inspect(image)
    if inspected is None:
        raise ImageProblem("ErrImagePull", f'image "{image}" is missing after its pull')
    return inspected, True
