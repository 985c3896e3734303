"""The dashboard's model: a Store fed by informers, rows as kubectl prints them, filters and sorting.

Nothing here imports Textual: the model is tested, benchmarked and reused
without a terminal. ``Feed`` runs the informers (trio) in a thread of their
own; the UI (asyncio) reads the ``Store`` and the ``RowCache``s.
"""
