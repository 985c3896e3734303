"""The main table: a Line API widget that follows the model's rows and redraws only the lines that changed.

Design note. The model (``RowCache`` + ``Query``) owns every row, filtered and
sorted; this widget only mirrors the current list: the ordered keys and each
row's cells. Textual's DataTable was tried first; its render caches are keyed
on a counter that any ``update_cell``, row move or resize bumps, so with pods
changing every few milliseconds each key press re-rendered every visible cell
through Rich (p99 ~500 ms at 5,000 pods). Here a line is one Segment — a row
has one style, its severity's — made from plain strings, and kept as a Strip
per row key until that row's cells, the width or the cursor change. ``show()``
diffs: an unchanged row (the cache hands back the same ``Row`` object) costs a
dict lookup; a changed row that stays in place repaints its one line if it is
on screen; only a change of order repaints the screen, from cached strips.
Cells are made from a row only when its line is drawn, so showing 5,000 rows
anew (Esc after a filter, a sort) costs the dozens on screen, not 5,000.

Line 0 is the header (it scrolls sideways with the rows, never up or down);
row ``i`` is virtual line ``i + 1``. The cursor is a row index that follows its
object by key when rows move around it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from nodeos.tui.data.rows import Column, Row, cells_at

PROMPT_KEYS = {"colon": ":", "slash": "/"}  # keys that open the screen's prompt
SCROLL_COLUMNS = 8  # left/right scroll this many cells
# Colour only adds to the STATUS text; these are ANSI names, so they hold at 16 colours.
SEVERITY_STYLES: dict[str, Style] = {"error": Style.parse("bold red"), "warn": Style.parse("yellow")}
HEADER, CURSOR = "resource-table--header", "resource-table--cursor"


@dataclass(frozen=True, slots=True)
class _Frame:
    """What drawing any line of the table needs, the same for every line of one render pass."""

    width: int  # a full line, before the sideways crop
    view: int  # the visible width
    scroll_x: int
    scroll_y: int
    style: Style
    header: Style
    cursor: Style


def fit(text: str, width: int, right: bool = False) -> str:
    """``text`` in exactly ``width`` cells: padded on the side away from its alignment, or cut with an ellipsis."""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…" if width > 0 else ""
    pad = " " * (width - cell_len(text))
    return pad + text if right else text + pad


class ResourceTable(ScrollView, can_focus=True):
    """The rows of one view; ``show()`` mirrors the model's current list."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Select", show=False),
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,ctrl+home", "first", "First row", show=False),
        Binding("end,ctrl+end", "last", "Last row", show=False),
        Binding("left", "sideways(-1)", "Scroll left", show=False),
        Binding("right", "sideways(1)", "Scroll right", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {HEADER, CURSOR}
    DEFAULT_CSS = """
    ResourceTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        & > .resource-table--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .resource-table--header { background: ansi_bright_blue; color: ansi_default; }
        & > .resource-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .resource-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    class RowSelected(Message):
        """Enter (or a click) on the cursor row: ``key`` is its object's key."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, now: Callable[[], float] = time.time, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.now = now
        self.cursor_row = 0
        self._columns: tuple[Column, ...] = ()
        self._labels: list[str] = []
        self._order: list[str] = []
        self._index: dict[str, int] = {}  # key -> its row index in _order
        self._shown: dict[str, Row] = {}  # key -> the Row shown
        # key -> (the Row they were made from, its cells, ages as of the last tick): made when first drawn
        self._cells: dict[str, tuple[Row, tuple[str, ...]]] = {}
        # key -> (what the line was drawn from, the line at full width); the header is under "".
        self._lines: dict[str, tuple[tuple[object, ...], Strip]] = {}
        self._frame: _Frame | None = None  # set while render_lines draws

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
        self._columns = tuple(columns)
        self._order, self._index = [], {}
        self._shown.clear()
        self._cells.clear()
        self._lines.clear()
        self.cursor_row = 0
        self.mark_sort(sort_index, descending)
        self._resize()

    def mark_sort(self, sort_index: int | None, descending: bool) -> None:
        """Show which column sorts the rows, as an arrow after its name."""
        self._labels = [column.name + (("↓" if descending else "↑") if index == sort_index else "")
                        for index, column in enumerate(self._columns)]
        self._lines.pop("", None)
        self.refresh(Region(0, 0, self.size.width, 1))

    # -- rows -----------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def current_key(self) -> str | None:
        """The key ("ns/name") of the row under the cursor, if any."""
        return self._order[self.cursor_row] if 0 <= self.cursor_row < len(self._order) else None

    @property
    def keys(self) -> list[str]:
        """The row keys in display order."""
        return list(self._order)

    def cells(self, key: str) -> tuple[str, ...]:
        """The cells shown for the row ``key`` (ages as of the last refresh), made now if not yet."""
        row = self._shown[key]
        made = self._cells.get(key)
        if made is not None and made[0] is row:
            return made[1]
        cells = cells_at(row, self.now())
        self._cells[key] = (row, cells)
        return cells

    def show(self, rows: Sequence[Row]) -> None:
        """Make the table show ``rows`` in this order, repainting only what changed."""
        focus_key = self.current_key
        shown = self._shown
        order = [row.key for row in rows]
        changed = [row for row in rows if shown.get(row.key) is not row]  # comprehensions: 5,000 rows a tick
        shown.update((row.key, row) for row in changed)
        if order != self._order:
            self._reorder(order)
        else:
            for row in changed:
                self._repaint_if_changed(row.key)
        self._follow(focus_key)

    def _repaint_if_changed(self, key: str) -> None:
        """Repaint a changed row's line if it is on screen and reads differently (a label change does not)."""
        if not self._on_screen(self._index[key]):
            return  # its cells are made when it is drawn
        made = self._cells.get(key)
        cells = self.cells(key)
        if made is None or made[1] != cells or made[0].severity != self._shown[key].severity:
            self.refresh_row(key)

    def _reorder(self, order: list[str]) -> None:
        gone = self._index.keys() - set(order)
        for key in gone:
            self._shown.pop(key, None)
            self._cells.pop(key, None)
            self._lines.pop(key, None)
        self._order = order
        self._index = {key: index for index, key in enumerate(order)}
        self._resize()
        self.refresh()

    def _follow(self, key: str | None) -> None:
        """Keep the cursor on the same object after rows moved around it; else keep it in range."""
        index = self._index.get(key, self.cursor_row) if key is not None else self.cursor_row
        self.move_cursor(row=index)

    def refresh_row(self, key: str) -> None:
        """Repaint the one line of row ``key`` if it is on screen."""
        index = self._index.get(key)
        if index is not None:
            self._refresh_index(index)

    def _refresh_index(self, index: int) -> None:
        if self._on_screen(index):
            self.refresh(Region(0, index + 1 - int(self.scroll_y), self.size.width, 1))

    def _on_screen(self, index: int) -> bool:
        return 1 <= index + 1 - int(self.scroll_y) < self.size.height

    def refresh_ages(self) -> None:
        """Recompute the age cells (AGE, LAST SEEN) of the rows on screen; ages move with the clock.

        Only lines whose text moved are repainted: most ages ("5m", "3d") read the same from one second
        to the next.
        """
        top = int(self.scroll_y)
        now = self.now()
        for key in self._order[top:top + self.size.height]:
            row = self._shown[key]
            if row.stamps:
                cells = cells_at(row, now)
                if cells != self.cells(key):
                    self._cells[key] = (row, cells)
                    self.refresh_row(key)

    # -- the cursor and scrolling ------------------------------------------------------

    @property
    def _page(self) -> int:
        """How many rows one screen shows (the header takes a line)."""
        return max(1, self.scrollable_content_region.height - 1)

    def move_cursor(self, *, row: int) -> None:
        """Put the cursor on row index ``row`` (clamped) and scroll it into view."""
        row = max(0, min(row, len(self._order) - 1))
        if row != self.cursor_row:
            self._refresh_index(self.cursor_row)
            self.cursor_row = row
            self._refresh_index(row)
        top = int(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + self._page:
            self.scroll_to(y=row - self._page + 1, animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        self.move_cursor(row=self.cursor_row + step)

    def action_page(self, step: int) -> None:
        self.scroll_to(y=self.scroll_y + step * self._page, animate=False, immediate=True)
        self.move_cursor(row=self.cursor_row + step * self._page)

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=len(self._order) - 1)

    def action_sideways(self, step: int) -> None:
        self.scroll_to(x=self.scroll_x + step * SCROLL_COLUMNS, animate=False, immediate=True)

    def action_select(self) -> None:
        key = self.current_key
        if key is not None:
            self.post_message(self.RowSelected(key))

    def on_click(self, event: events.Click) -> None:
        """A click moves the cursor to a row; a click on the cursor row selects it."""
        if event.y < 1:
            return
        index = int(self.scroll_y) + event.y - 1
        if index == self.cursor_row:
            self.action_select()
        elif index < len(self._order):
            self.move_cursor(row=index)

    # -- drawing -------------------------------------------------------------------------

    def _resize(self) -> None:
        width = sum(column.width + 2 for column in self._columns)
        self.virtual_size = Size(width, len(self._order) + 1)

    def _widths(self, width: int) -> list[int]:
        """Each column's width when the line is ``width`` cells: the last takes what is left."""
        widths = [column.width for column in self._columns]
        if widths:
            widths[-1] = max(widths[-1], width - sum(w + 2 for w in widths[:-1]) - 2)
        return widths

    def render_lines(self, crop: Region) -> list[Strip]:
        """Textual's, with what every line needs (widths, scroll offsets, styles) worked out once for all."""
        self._frame = self._make_frame()
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _make_frame(self) -> _Frame:
        view = self.scrollable_content_region.width
        return _Frame(width=max(self.virtual_size.width, view), view=view, scroll_x=int(self.scroll_x),
                      scroll_y=int(self.scroll_y), style=self.rich_style,
                      header=self.rich_style + self.get_component_rich_style(HEADER),
                      cursor=self.get_component_rich_style(CURSOR))

    def render_line(self, y: int) -> Strip:
        frame = self._frame or self._make_frame()
        left, right = frame.scroll_x, frame.scroll_x + frame.view
        if y == 0:
            return self._line("", self._labels, frame.header, frame.width).crop(left, right)
        index = frame.scroll_y + y - 1
        if index >= len(self._order):
            return Strip.blank(frame.view, frame.style)
        key = self._order[index]
        style = frame.style
        if index == self.cursor_row:
            style += frame.cursor
        severity = self._shown[key].severity
        style += SEVERITY_STYLES.get(severity, Style.null())
        return self._line(key, self.cells(key), style, frame.width, severity).crop(left, right)

    def _line(self, key: str, cells: Sequence[str], style: Style, width: int, severity: str = "") -> Strip:
        """The full-width line of ``cells``, from the cache while nothing it is drawn from changed."""
        made_from = (cells, severity, style, width)
        hit = self._lines.get(key)
        if hit is not None and hit[0] == made_from:
            return hit[1]
        text = "".join(f" {fit(cell, w, column.align == 'right')} "
                       for cell, w, column in zip(cells, self._widths(width), self._columns, strict=False))
        strip = Strip([Segment(fit(text, width), style)], width)
        self._lines[key] = (made_from, strip)
        return strip
