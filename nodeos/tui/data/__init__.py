"""The dashboard's model: a Store fed by informers, rows as kubectl prints them, filters and sorting.

Nothing here imports Textual: the model is tested, benchmarked and reused
without a terminal. ``Feed`` runs the informers (trio) in a thread of their
own; the UI (asyncio) reads the ``Store`` and the ``RowCache``s.
"""

from nodeos.tui.data.actions import ActionError
from nodeos.tui.data.feed import Feed, LineBuffer, Subscription
from nodeos.tui.data.query import Query, QueryError, RowCache, RowCaches, select
from nodeos.tui.data.rows import VIEWS, Column, Row, Summary, ViewSpec, cells_at, summary, view_for
from nodeos.tui.data.store import Store

__all__ = [
    "VIEWS",
    "ActionError",
    "Column",
    "Feed",
    "LineBuffer",
    "Query",
    "QueryError",
    "Row",
    "RowCache",
    "RowCaches",
    "Store",
    "Subscription",
    "Summary",
    "ViewSpec",
    "cells_at",
    "select",
    "summary",
    "view_for",
]
