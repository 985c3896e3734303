"""A real API server inside the test's own trio run, for testing API clients
(controllers, the scheduler, agents) against the real thing, cheaply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from nodeos.api.server import serve_api
from nodeos.client import ApiClient, Connection
from nodeos.config import default_config
from tests.daemon import free_port


@asynccontextmanager
async def running_api(data_dir: Path) -> AsyncIterator[ApiClient]:
    """Serve the API on a free loopback port; yield a client connected to it."""
    port = free_port()
    config = default_config(node={"name": "test-master", "data_dir": data_dir},
                            api={"listen": f"127.0.0.1:{port}"})
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_api, config)
        async with ApiClient(Connection(server=f"http://127.0.0.1:{port}")) as api:
            yield api
        nursery.cancel_scope.cancel()
