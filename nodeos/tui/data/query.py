"""Filtering and sorting in the dashboard's model, fast enough for 5,000 pods.

The widget never sees the cluster, only ``select()``'s answer: the rows of one
view, in one namespace (or all), passing the filter, in the chosen order.

Cost model: building a row runs kubectl's printers (tens of microseconds), so
rows are cached per view in a ``RowCache`` and rebuilt only for the keys the
store reports changed. Filtering is a substring test on each row's
precomputed lower-case text, and sorting compares precomputed sort values:
with 5,000 rows a ``select`` is a few milliseconds, whatever changed.

The filter is what the user types after ``/``: plain text matches any cell
(case-insensitive); ``-l app=web,tier in (a,b)`` is a label selector in the
API's own grammar (``nodeos.api.selectors``), so it means exactly what it
means to ``kubectl get -l``. A malformed selector raises ``QueryError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nodeos.api.selectors import LabelSelector, parse_label_selector
from nodeos.errors import ApiError
from nodeos.tui.data.rows import VIEWS, Row, ViewSpec, build_row
from nodeos.tui.data.store import Store


class QueryError(ValueError):
    """A filter that cannot be understood (a malformed label selector); its message says why."""


@dataclass(frozen=True, slots=True)
class Query:
    view: str  # a key of VIEWS: "pods"
    namespace: str | None = None  # None: all namespaces
    text: str = ""  # case-insensitive substring of any cell
    labels: str = ""  # a label selector, as kubectl's -l

    @classmethod
    def parse(cls, view: str, namespace: str | None, filter_text: str) -> Query:
        """The query for what the user typed at ``/``: ``-l SELECTOR`` or plain text."""
        stripped = filter_text.strip()
        for flag in ("-l ", "--selector ", "--selector=", "-l="):
            if stripped.startswith(flag):
                return cls(view, namespace, labels=stripped[len(flag):].strip())
        return cls(view, namespace, text=stripped)

    def selector(self) -> LabelSelector | None:
        if not self.labels:
            return None
        try:
            return parse_label_selector(self.labels)
        except ApiError as exc:
            raise QueryError(exc.message) from exc


class RowCache:
    """The rows of one view, rebuilt incrementally from the store's changed keys."""

    def __init__(self, view: str | ViewSpec) -> None:
        self.spec = view if isinstance(view, ViewSpec) else VIEWS[view]
        self._rows: dict[str, Row] = {}
        self.version = 0  # bumped when any row changed, so a screen can skip a refresh
        self.builds = 0  # rows built so far, for tests and the benchmark

    def update(self, store: Store, changed_keys: Iterable[str] | None = None) -> int:
        """Rebuild the rows of ``changed_keys`` (None: every object); return how many changed."""
        kind = self.spec.kind
        if changed_keys is None:
            objects: Mapping[str, dict] = store.objects(kind)
            self._rows = {key: build_row(self.spec, obj, store) for key, obj in objects.items()}
            self.builds += len(self._rows)
            self.version += 1
            return len(self._rows)
        count = 0
        for key in changed_keys:
            obj = store.get(kind, key)
            if obj is None:
                if self._rows.pop(key, None) is not None:
                    count += 1
                continue
            self._rows[key] = build_row(self.spec, obj, store)
            self.builds += 1
            count += 1
        if count:
            self.version += 1
        return count

    def rows(self) -> list[Row]:
        """Every cached row, in no particular order."""
        return [*self._rows.values()]

    def get(self, key: str) -> Row | None:
        return self._rows.get(key)

    def __len__(self) -> int:
        return len(self._rows)

    def select(self, query: Query, sort_column: str | int | None = None, descending: bool | None = None) -> list[Row]:
        return _select(self.spec, self._rows.values(), query, sort_column, descending)


class RowCaches:
    """One RowCache per view, fed from one ``take_changes()``: what the app holds."""

    def __init__(self, store: Store, views: Iterable[str] = VIEWS) -> None:
        self.store = store
        self.caches = {name: RowCache(name) for name in views}
        for cache in self.caches.values():
            cache.update(store)

    def refresh(self) -> set[str]:
        """Apply the store's changes; return the names of the views whose rows changed."""
        changes = self.store.take_changes()
        changed = set()
        for name, cache in self.caches.items():
            keys = changes.get(cache.spec.kind)
            if keys and cache.update(self.store, keys):
                changed.add(name)
        return changed

    def __getitem__(self, view: str) -> RowCache:
        return self.caches[view]


def select(source: RowCache | Store, query: Query, sort_column: str | int | None = None,
           descending: bool | None = None) -> list[Row]:
    """The rows ``query`` asks for, sorted by ``sort_column`` (a name or index; None: the view's default).

    ``source`` is a RowCache (fast: cached rows) or a Store (rows built afresh: for small
    stores and tests). Ties are broken by key, so the order is stable as rows change.
    """
    if isinstance(source, Store):
        cache = RowCache(query.view)
        cache.update(source)
        source = cache
    return source.select(query, sort_column, descending)


def _select(spec: ViewSpec, rows: Iterable[Row], query: Query, sort_column: str | int | None,
            descending: bool | None) -> list[Row]:
    if sort_column is None:
        sort_column, default_descending = spec.default_sort
        descending = default_descending if descending is None else descending
    index = sort_column if isinstance(sort_column, int) else spec.column_index(sort_column)
    selector = query.selector()
    needle = query.text.lower()
    prefix = f"{query.namespace}/" if query.namespace and spec.namespaced else None
    chosen = [row for row in rows
              if (prefix is None or row.key.startswith(prefix))
              and (not needle or needle in row.search)
              and (selector is None or selector.matches(row.labels))]
    good = [row for row in chosen if row.sort]
    good.sort(key=lambda row: row.key)
    good.sort(key=lambda row: row.sort[index], reverse=bool(descending))
    return good + sorted((row for row in chosen if not row.sort), key=lambda row: row.key)
