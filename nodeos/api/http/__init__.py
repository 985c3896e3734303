"""The API's HTTP face: a plain ASGI application served by hypercorn on trio."""

from nodeos.api.http.app import ApiApp

__all__ = ["ApiApp"]
