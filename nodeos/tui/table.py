"""The main table: a DataTable that follows the model's rows without rebuilding.

Design note. The model (``RowCache`` + ``Query``) owns every row, filtered and
sorted; this widget only mirrors the current list. Rebuilding a DataTable of
5,000 rows on each change costs tens of milliseconds and loses the cursor, so
``show(rows)`` diffs instead: rows whose ``Row`` object is unchanged (the cache
hands back the same object) are skipped, changed rows get ``update_cell`` for
the cells that differ, vanished rows are dropped and new rows appended, and
then the display order is set in one step. DataTable has no public "move row"
nor "remove many rows" (``remove_row`` is O(n) each), so those two steps set
its row-location map directly, as its own ``sort()`` does. The cursor follows
its object by key, not its index.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual._two_way_dict import TwoWayDict
from textual.widgets import DataTable
from textual.widgets._data_table import Row as TableRow
from textual.widgets.data_table import ColumnKey, RowKey

from nodeos.tui.data.rows import Column, Row, cells_at

PROMPT_KEYS = {"colon": ":", "slash": "/"}  # keys that open the screen's prompt
RENDERED_CELLS_MAX = 8192  # ~ 20 screens of 160x48: enough to page back and forth, bounded
# Colour only adds to the STATUS text; these are ANSI names, so they hold at 16 colours.
SEVERITY_STYLES: dict[str, str] = {"error": "bold red", "warn": "yellow"}


def _style(severity: str) -> str:
    return SEVERITY_STYLES.get(severity, "")


class ResourceTable(DataTable):
    """The rows of one view; ``show()`` mirrors the model's current list."""

    DEFAULT_CSS = """
    ResourceTable { height: 1fr; }
    """

    def __init__(self, *, now: Callable[[], float] = time.time, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.now = now
        self._shown: dict[str, Row] = {}
        self._order: list[str] = []
        self._columns: tuple[Column, ...] = ()
        # key -> (the Row the cells were made from, its cells): a filter or namespace switch re-adds
        # thousands of unchanged rows, and making their Text cells is most of that cost.
        self._made: dict[str, tuple[Row, list[Text]]] = {}
        # (id of a cell's Text, where and how it is drawn) -> (that Text, its rendered lines); see _render_cell.
        self._rendered: dict[tuple[object, ...], tuple[Text, list[list[Segment]]]] = {}

    # -- keys typed ahead of the prompt --------------------------------------------

    async def on_key(self, event: events.Key) -> None:
        """Keys that reached the table while a prompt is open go to the prompt.

        Typed fast — a paste, or SSH delivering ``:no`` and Enter in one read — the keys after ``:`` are
        already queued for the table before the screen's binding would open the prompt; so the table opens
        it itself, and hands on what follows, which would otherwise sort and describe instead of naming a
        view.
        """
        screen = self.screen
        prompt = getattr(screen, "open_prompt", lambda: None)()
        if prompt is None:
            opens = PROMPT_KEYS.get(event.key)
            if opens is not None and hasattr(screen, "action_prompt"):
                # Open it here, in this queue, so the keys queued behind this one find it open.
                event.stop()
                event.prevent_default()
                screen.action_prompt(opens)
            return
        event.stop()
        event.prevent_default()
        if event.key == "enter":
            await prompt.action_submit()
        elif event.key == "escape":
            await self.screen.run_action("clear_filter")
        elif event.key == "backspace":
            prompt.action_delete_left()
        elif event.is_printable and event.character:
            prompt.insert_text_at_cursor(event.character)

    # -- columns ------------------------------------------------------------------

    def set_columns(self, columns: Sequence[Column], sort_index: int | None = None, descending: bool = False) -> None:
        """Start over with new columns (a view switch); the sort column's header is marked."""
        self.clear(columns=True)
        self._shown.clear()
        self._made.clear()
        self._rendered.clear()
        self._order = []
        self._columns = tuple(columns)
        for index, column in enumerate(columns):
            label = column.name
            if index == sort_index:
                label += "↓" if descending else "↑"
            self.add_column(label, width=column.width, key=str(index))

    def mark_sort(self, sort_index: int | None, descending: bool) -> None:
        """Show which column sorts the rows, as an arrow after its name."""
        for index, column in enumerate(self._columns):
            key = self.ordered_columns[index].key
            label = column.name + (("↓" if descending else "↑") if index == sort_index else "")
            self.columns[key].label = Text(label)
        self._clear_caches()
        self.refresh()

    # -- rows -----------------------------------------------------------------------

    @property
    def current_key(self) -> str | None:
        """The key ("ns/name") of the row under the cursor, if any."""
        if not self._order or not 0 <= self.cursor_row < len(self._order):
            return None
        return self._order[self.cursor_row]

    @property
    def keys(self) -> list[str]:
        """The row keys in display order."""
        return list(self._order)

    def show(self, rows: Sequence[Row]) -> None:
        """Make the table show ``rows`` in this order, touching only what changed."""
        focus_key = self.current_key
        wanted = {row.key: row for row in rows}
        gone = [key for key in self._order if key not in wanted]
        if len(gone) > len(self._order) // 2:
            self._rebuild(rows)
        else:
            self._drop(gone)
            for row in rows:
                self._put(row)
            self._reorder([row.key for row in rows])
        self._follow(focus_key)

    def _rebuild(self, rows: Sequence[Row]) -> None:
        """Most rows went away (a filter, a namespace switch): adding afresh is cheaper than diffing."""
        self.clear()
        self._shown.clear()
        self._order = []
        for row in rows:
            self._add(row)
        self._reorder([row.key for row in rows])

    def _add(self, row: Row) -> None:
        """``add_row`` without its per-row work: the columns have fixed widths, so no cell needs
        measuring, and the cursor is revalidated once by ``_reorder`` rather than once per row."""
        key = RowKey(row.key)
        self._data[key] = {ColumnKey(str(i)): cell for i, cell in enumerate(self._made_cells(row))}
        self.rows[key] = TableRow(key, 1)
        self._shown[row.key] = row

    def _drop(self, keys: Sequence[str]) -> None:
        for key in keys:
            row_key = RowKey(key)
            del self.rows[row_key]
            del self._data[row_key]
            self._shown.pop(key, None)

    def _put(self, row: Row) -> None:
        old = self._shown.get(row.key)
        if old is row:
            return
        if old is None:
            self._add(row)
            return
        self._shown[row.key] = row
        if old.cells == row.cells and old.severity == row.severity:
            return
        old_cells = self._made_cells(old)
        for index, cell in enumerate(self._made_cells(row)):
            if cell != old_cells[index]:
                self.update_cell(row.key, str(index), cell)

    def _reorder(self, keys: list[str]) -> None:
        if keys == self._order and len(self._row_locations) == len(keys):
            return
        self._order = keys
        self._row_locations = TwoWayDict({RowKey(key): index for index, key in enumerate(keys)})
        self._update_count += 1
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate  # revalidate against the new row count
        self.refresh(layout=True)

    def _follow(self, key: str | None) -> None:
        """Keep the cursor on the same object after rows moved around it."""
        if key is None or key not in self._shown:
            return
        index = self._order.index(key) if self._order[self.cursor_row:self.cursor_row + 1] != [key] else None
        if index is not None:
            self.move_cursor(row=index)

    def refresh_ages(self) -> None:
        """Recompute the age cells (AGE, LAST SEEN) of the rows on screen; ages move with the clock.

        Only cells whose text moved are updated: each ``update_cell`` makes DataTable redraw every visible
        cell, and most ages ("5m", "3d") read the same from one second to the next.
        """
        top = int(self.scroll_y)
        for key in self._order[top:top + self.size.height + 1]:
            row = self._shown[key]
            if not row.stamps:
                continue
            now_cells = cells_at(row, self.now())
            shown = self._data.get(RowKey(key), {})
            for index in row.stamps:
                old = shown.get(ColumnKey(str(index)))
                if not isinstance(old, Text) or old.plain != now_cells[index]:
                    self.update_cell(key, str(index), self._cell(row, index, now_cells[index]))

    def _clear_caches(self) -> None:
        """DataTable drops its renders when its look changes (cursor shown, padding, theme): so do we."""
        super()._clear_caches()
        self._rendered.clear()

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        """DataTable's cell rendering, remembered across its cache resets.

        DataTable keys its render caches on a counter that every ``update_cell``, row move and resize
        bumps, so one changed cell — or the prompt opening, which shrinks the table by a line — re-renders
        every visible cell through Rich, ~40 ms at 160x48. Our cells are Text objects that stay the same
        object while their row is unchanged (``_made``), so a render can be reused while the same Text is
        drawn at the same row index (the index is in the mouse metadata), width and style.
        """
        if row_index < 0 or not self._columns:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        try:
            row_key = self._row_locations.get_key(row_index)
            cell = self._data[row_key][self._column_locations.get_key(column_index)]
        except KeyError:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (id(cell), row_index, column_index, base_style, width, cursor, hover, self.show_cursor,
               self._show_hover_cursor, self._pseudo_class_state)
        hit = self._rendered.get(key)
        if hit is not None and hit[0] is cell:
            return hit[1]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        if len(self._rendered) >= RENDERED_CELLS_MAX:
            self._rendered.clear()
        self._rendered[key] = (cell, lines)  # type: ignore[assignment]
        return lines

    def _made_cells(self, row: Row) -> list[Text]:
        made = self._made.get(row.key)
        if made is not None and made[0] is row:
            return made[1]
        cells = self._cells(row)
        self._made[row.key] = (row, cells)
        return cells

    def _cells(self, row: Row) -> list[Text]:
        return [self._cell(row, index, cell) for index, cell in enumerate(cells_at(row, self.now()))]

    def _cell(self, row: Row, index: int, cell: str) -> Text:
        justify = "right" if self._columns[index].align == "right" else "left"
        return Text(cell, style=_style(row.severity), justify=justify, no_wrap=True, overflow="ellipsis")
