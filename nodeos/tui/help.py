"""Every key of the dashboard, in one table, and the ``?`` screen that shows it.

The table is the documentation: the help screen is rendered from it and a test
checks that each key it lists is bound, so help and behaviour cannot drift.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# (section, key, what it does). Keys are written as the user types them.
KEYS: tuple[tuple[str, str, str], ...] = (
    ("Views", "1-7", "pods, nodes, deployments, replicasets, daemonsets, services, events"),
    ("Views", ":", "command: :pods :po :no :deploy :rs :ds :svc :ev, :ns NAME, :ns all, :q"),
    ("Views", "/", "filter rows: text (substring), or -l app=web (label selector)"),
    ("Views", "esc", "clear the filter; close a screen"),
    ("Views", "o", "sort by the next column"),
    ("Views", "O", "reverse the sort order"),
    ("Views", "N A S R", "sort by NAME, AGE, STATUS, RESTARTS... (shift+first letter; again reverses)"),
    ("Views", "↑ ↓ pgup pgdn", "move the cursor; home, end: first, last row"),
    ("Views", "← →", "scroll a table wider than the screen sideways"),
    ("Views", "enter, d", "describe: spec, status, conditions and the object's events"),
    ("Views", "?", "this help"),
    ("Views", "q, ctrl+c", "quit"),
    ("Pods", "l", "logs of the pod"),
    ("Pods", "ctrl+d", "delete the pod (asks first)"),
    ("Deployments", "s", "scale (asks the replicas, then to confirm); also ReplicaSets"),
    ("Deployments", "r", "rollout restart (asks first)"),
    ("Deployments", "u", "rollout undo to the previous revision (asks first)"),
    ("Nodes", "c", "cordon (asks first)"),
    ("Nodes", "u", "uncordon (asks first)"),
    ("Nodes", "r", "drain: cordon and evict its pods (asks first)"),
    ("Logs", "f", "follow on/off"),
    ("Logs", "c", "choose the container"),
    ("Logs", "t", "since-window: 1m, 5m, 1h, all"),
    ("Logs", "← →", "scroll sideways through long lines"),
    ("Logs", "esc", "back"),
    ("Dialogs", "y / n, esc", "confirm / cancel; tab moves between buttons, enter presses"),
)

READONLY_NOTE = "Read-only (--readonly): delete, scale, restart, undo, cordon, uncordon and drain are off."


def help_text(readonly: bool) -> str:
    """The help as Rich markup, one section per block."""
    lines: list[str] = []
    section = None
    for name, key, what in KEYS:
        if name != section:
            lines.append(f"\n[b u]{name}[/]")
            section = name
        lines.append(f"  [b]{key:<12}[/b] {what}")
    if readonly:
        lines.append(f"\n[b]{READONLY_NOTE}[/b]")
    lines.append("\nStatus is always written out (STATUS column); colour only adds to it.")
    return "\n".join(lines).lstrip("\n")


class HelpScreen(ModalScreen[None]):
    """``?``: every key; ``esc``, ``q`` or ``?`` closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 100; max-width: 100%; height: 100%; border: round $accent; background: $surface; padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, readonly: bool = False) -> None:
        super().__init__()
        self.readonly = readonly

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "Help — esc to close"
            yield Static(help_text(self.readonly))

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
