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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter

from nodeos.api.selectors import LabelSelector, parse_label_selector
from nodeos.errors import ApiError
from nodeos.tui.data.rows import VIEWS, Row, ViewSpec, build_row
from nodeos.tui.data.store import Store

KEPT_SELECTIONS = 4  # selections a RowCache keeps up to date: the current, and the few before it


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


@dataclass(slots=True)
class _Selection:
    """The last ``select()`` answer, kept while the rows that changed since keep their place in it."""

    params: tuple[Query, int, bool]  # the query and the resolved sort column and direction
    rows: list[Row]
    position: dict[str, int]  # key -> index in rows
    matches: Callable[[Row], bool]


class RowCache:
    """The rows of one view, rebuilt incrementally from the store's changed keys.

    The last few selections are kept too (``KEPT_SELECTIONS``: the view unfiltered, and as filtered, so
    that Esc goes back at no cost): a batch of changes that neither moves a row in the order nor in or out
    of the filter (most of them: a label, a restart count under the NAME sort) swaps the new rows into each
    in place, so the next ``select()`` with the same query costs a list copy instead of a filter and a sort
    of every row. A change that moves a row drops the selection it moves in.
    """

    def __init__(self, view: str | ViewSpec) -> None:
        self.spec = view if isinstance(view, ViewSpec) else VIEWS[view]
        self._rows: dict[str, Row] = {}
        self._selections: dict[tuple[Query, int, bool], _Selection] = {}  # oldest first
        self.version = 0  # bumped when any row changed, so a screen can skip a refresh
        self.builds = 0  # rows built so far, for tests and the benchmark
        self.sorts = 0  # selections filtered and sorted from scratch, for tests and the benchmark

    def update(self, store: Store, changed_keys: Iterable[str] | None = None) -> int:
        """Rebuild the rows of ``changed_keys`` (None: every object); return how many changed."""
        kind = self.spec.kind
        if changed_keys is None:
            objects: Mapping[str, dict] = store.objects(kind)
            self._rows = {key: build_row(self.spec, obj, store) for key, obj in objects.items()}
            self._selections.clear()
            self.builds += len(self._rows)
            self.version += 1
            return len(self._rows)
        count = 0
        for key in changed_keys:
            obj = store.get(kind, key)
            old = self._rows.get(key)
            if obj is None:
                if old is not None:
                    del self._rows[key]
                    self._patch(old, None)
                    count += 1
                continue
            row = self._rows[key] = build_row(self.spec, obj, store)
            self._patch(old, row)
            self.builds += 1
            count += 1
        if count:
            self.version += 1
        return count

    def _patch(self, old: Row | None, new: Row | None) -> None:
        """Put ``new`` in place of ``old`` in each kept selection; drop those in which the row moved."""
        for params, selection in list(self._selections.items()):
            was = old is not None and selection.matches(old)
            now = new is not None and selection.matches(new)
            if not was and not now:
                continue  # outside the filter before and after
            index = params[1]
            if was and now and _sort_value(old, index) == _sort_value(new, index):  # type: ignore[arg-type]
                selection.rows[selection.position[new.key]] = new  # type: ignore[union-attr]
            else:
                del self._selections[params]

    def rows(self) -> list[Row]:
        """Every cached row, in no particular order."""
        return [*self._rows.values()]

    def get(self, key: str) -> Row | None:
        return self._rows.get(key)

    def __len__(self) -> int:
        return len(self._rows)

    def select(self, query: Query, sort_column: str | int | None = None, descending: bool | None = None) -> list[Row]:
        """The rows ``query`` asks for, in order (see ``select``); the kept selection when it still holds."""
        index, reverse = _resolve_sort(self.spec, sort_column, descending)
        params = (query, index, reverse)
        selection = self._selections.pop(params, None)
        if selection is None:
            matches = _matcher(self.spec, query)
            rows = _order([row for row in self._rows.values() if matches(row)], index, reverse)
            selection = _Selection(params, rows, {row.key: i for i, row in enumerate(rows)}, matches)
            self.sorts += 1
            while len(self._selections) >= KEPT_SELECTIONS:
                del self._selections[next(iter(self._selections))]
        self._selections[params] = selection  # the most recent last
        return list(selection.rows)


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


def _resolve_sort(spec: ViewSpec, sort_column: str | int | None, descending: bool | None) -> tuple[int, bool]:
    """The sort column's index and direction; None means the view's default column (and its direction)."""
    if sort_column is None:
        sort_column, default_descending = spec.default_sort
        descending = default_descending if descending is None else descending
    index = sort_column if isinstance(sort_column, int) else spec.column_index(sort_column)
    return index, bool(descending)


def _matcher(spec: ViewSpec, query: Query) -> Callable[[Row], bool]:
    """Whether a row passes the query's namespace, text and label filters (QueryError for a bad selector)."""
    selector = query.selector()
    needle = query.text.lower()
    prefix = f"{query.namespace}/" if query.namespace and spec.namespaced else None

    def matches(row: Row) -> bool:
        return ((prefix is None or row.key.startswith(prefix))
                and (not needle or needle in row.search)
                and (selector is None or selector.matches(row.labels)))
    return matches


def _sort_value(row: Row, index: int) -> tuple[bool, object]:
    """What places ``row`` in an order by column ``index``: whether it sorts at all, then its value."""
    return (True, row.sort[index]) if row.sort else (False, None)


def _order(rows: list[Row], index: int, descending: bool) -> list[Row]:
    """By column ``index``, ties by key (ascending either way); unprintable rows (no sort values) last."""
    good = [row for row in rows if row.sort]
    good.sort(key=attrgetter("key"))
    good.sort(key=lambda row: row.sort[index], reverse=descending)  # stable: ties keep their key order
    return good + sorted((row for row in rows if not row.sort), key=attrgetter("key"))
