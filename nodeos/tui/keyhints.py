"""The key hints line at the bottom of the main screen: Textual's Footer, rebuilt only when its keys change.

Textual's Footer rebuilds itself — removes and mounts a widget per key, with
a style pass and a relayout of the screen — whenever the screen's bindings
*may* have changed, which includes every focus change. Opening the ``/``
prompt and closing it with Esc each moved the focus, so each paid that
rebuild (tens of milliseconds with 5,000 rows under load). Here the keys it
would show are compared first; the rebuild happens only when they differ,
and not while it is hidden (the prompt takes its line, and the prompt's own
keys are not the screen's).
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer

Hints = tuple[tuple[str, str, str, bool], ...]  # (key, action, description, enabled) of each shown binding


def shown_hints(screen: Screen) -> Hints:
    """What the Footer would show for ``screen`` now: its bindings with ``show``, in order."""
    return tuple((key, active.binding.action, active.binding.description, active.enabled)
                 for key, active in screen.active_bindings.items() if active.binding.show)


class KeyHints(Footer):
    """A Footer that skips the rebuild when the shown keys are the ones it already shows."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._hints: Hints | None = None
        self.rebuilds = 0  # for tests

    def bindings_changed(self, screen: Screen) -> None:
        if not (screen.app.app_focus and self.is_attached and screen is self.screen):
            super().bindings_changed(screen)  # Footer's own rules: it does not rebuild then
            return
        if not self.display:
            return  # hidden under the prompt (which has keys of its own): the screen's keys come back with it
        hints = shown_hints(screen)
        if hints == self._hints:
            return
        self._hints = hints
        self.rebuilds += 1
        super().bindings_changed(screen)
