"""Token cleaner: expired bootstrap tokens are deleted, as Kubernetes' tokencleaner controller does.

A bootstrap token (nodeos.api.auth.bootstrap) is a Secret in ``kube-system``
that no one needs once its ``expiration`` has passed: the authenticator
already refuses it, and ``nodeos token list`` would only grow. Used tokens
are kept until they expire, so the list shows which node spent each; a
token created with ``--ttl 0`` never expires and stays until ``nodeos token
delete``.

A periodic sweep rather than an informer, like the Event TTL controller:
there are few tokens and only a deadline to act on.
"""

from __future__ import annotations

import datetime as dt
import logging

import trio

from nodeos.api.auth.bootstrap import NAMESPACE, SECRET_TYPE, token_state
from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient, ApiUnavailable
from nodeos.config import Config
from nodeos.controllers.base import Controller
from nodeos.controllers.events import EventRecorder
from nodeos.errors import ApiError

log = logging.getLogger(__name__)
SECRETS = by_plural("", "v1", "secrets")
SWEEP_SECONDS = 60.0


class TokenCleaner(Controller):
    name = "tokencleaner"

    def __init__(self, api: ApiClient, recorder: EventRecorder, *, sweep_seconds: float = SWEEP_SECONDS) -> None:
        super().__init__(api, recorder)
        self.sweep_seconds = sweep_seconds

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                deleted = await self.sweep()
            except (ApiError, ApiUnavailable) as exc:
                log.info("token cleaner: sweep stopped early: %s (next in %ss)", exc, self.sweep_seconds)
            else:
                if deleted:
                    log.info("token cleaner: deleted %d expired bootstrap token(s)", deleted)
            await trio.sleep(self.sweep_seconds)

    async def sweep(self) -> int:
        """Delete every expired bootstrap token; the number deleted."""
        assert SECRETS is not None
        now = dt.datetime.now(dt.UTC)
        deleted = 0
        secrets = (await self.api.list_all(SECRETS, NAMESPACE)).get("items") or []
        for secret in secrets:
            if secret.get("type") != SECRET_TYPE:
                continue
            state = token_state(secret)
            if state is None or not state.expired(now):
                continue
            try:
                await self.api.delete(SECRETS, secret["metadata"]["name"], NAMESPACE)
            except ApiError as exc:
                if exc.code != 404:
                    raise
                continue
            deleted += 1
        return deleted


def build(api: ApiClient, recorder: EventRecorder, config: Config) -> TokenCleaner:
    return TokenCleaner(api, recorder)
