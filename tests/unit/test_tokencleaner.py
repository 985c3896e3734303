"""The token cleaner deletes expired bootstrap tokens and nothing else."""

from __future__ import annotations

import datetime as dt

from nodeos.api.auth.bootstrap import new_token, token_secret
from nodeos.config import default_config
from nodeos.controllers import tokencleaner
from nodeos.controllers.events import EventRecorder
from nodeos.controllers.tokencleaner import SECRETS, TokenCleaner


async def test_only_expired_tokens_go(api):
    tokens = {"expired": new_token(), "fresh": new_token(), "forever": new_token()}
    ttls = {"expired": dt.timedelta(seconds=-5), "fresh": dt.timedelta(hours=1), "forever": None}
    for key, token in tokens.items():
        await api.create(SECRETS, token_secret(token, ttls[key], key), "kube-system")
    other = {"metadata": {"name": "bootstrap-token-lookalike"}, "stringData": {"expiration": "2000-01-01T00:00:00Z"}}
    await api.create(SECRETS, other, "kube-system")  # not of the bootstrap type: none of its business

    cleaner = TokenCleaner(api, EventRecorder(api, "test"))
    assert await cleaner.sweep() == 1
    left = {s["metadata"]["name"] for s in (await api.list(SECRETS, "kube-system"))["items"]}
    assert left == {f"bootstrap-token-{tokens['fresh'].id}", f"bootstrap-token-{tokens['forever'].id}",
                    "bootstrap-token-lookalike"}
    assert await cleaner.sweep() == 0


async def test_build(api):
    built = tokencleaner.build(api, EventRecorder(api, "test"), default_config())
    assert built.sweep_seconds <= 60
