"""Modal dialogs: yes/no confirmation, a number, a choice from a list.

Every dialog is fully keyboard-operable (an operator over SSH has no mouse):
``y``/``n`` answer a confirmation, ``esc`` always cancels, ``enter`` accepts.
Each returns its answer through ``dismiss`` (``push_screen(..., callback)``),
``None`` or ``False`` meaning "cancelled", so callers never act by default.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 60; max-width: 90%; height: auto; max-height: 90%;
    border: thick $accent; background: $surface; padding: 0 1;
}}
{name} Horizontal {{ height: auto; align-horizontal: center; }}
{name} Button {{ margin: 0 2; min-width: 8; }}
{name} OptionList {{ height: auto; max-height: 12; }}
"""


class ConfirmScreen(ModalScreen[bool]):
    """Ask before acting: ``y`` or Yes confirms; ``n``, ``esc`` or No cancels (the focused default)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmScreen")
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
        Binding("left,right", "app.focus_next", "Switch", show=False),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, id="question")
            yield Label("[b]y[/b] yes   [b]n[/b]/[b]esc[/b] no", id="keys")
            with Horizontal():
                yield Button("Yes", id="yes", variant="error")
                yield Button("No", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class NumberScreen(ModalScreen[int | None]):
    """Ask for a whole number (replicas); ``enter`` accepts, ``esc`` cancels."""

    DEFAULT_CSS = DIALOG_CSS.format(name="NumberScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: int | None = None) -> None:
        super().__init__()
        self.question = question
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Input(value="" if self.value is None else str(self.value), type="integer", id="number")
            yield Label("[b]enter[/b] accept   [b]esc[/b] cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text.isdigit():
            self.notify("a whole number, 0 or more", severity="warning")
            return
        self.dismiss(int(text))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceScreen(ModalScreen[str | None]):
    """Pick one of a few values (a container, a since-window); ``enter`` picks, ``esc`` cancels."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ChoiceScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, choices: Sequence[str], current: str | None = None) -> None:
        super().__init__()
        self.question = question
        self.choices = list(choices)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield OptionList(*self.choices, id="choices")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.current in self.choices:
            options.highlighted = self.choices.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.choices[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)
