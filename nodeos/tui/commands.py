"""What the ``:`` prompt means, apart from any widget.

``:`` takes k9s' commands: a view's name or alias (``:po``, ``:deploy``),
``:ns NAME`` / ``:ns all`` for the namespace, ``:q`` to quit. (The ``/``
filter is the model's: ``Query.parse``.) Parsing is pure so the tests can
check it without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass

from nodeos.tui.data.rows import view_for

QUIT_WORDS = frozenset({"q", "q!", "quit", "exit"})
ALL_NAMESPACES = frozenset({"all", "*", "-A", "--all-namespaces"})


@dataclass(frozen=True)
class ShowView:
    view: str


@dataclass(frozen=True)
class SetNamespace:
    namespace: str | None  # None: all namespaces


@dataclass(frozen=True)
class Quit:
    pass


@dataclass(frozen=True)
class Unknown:
    message: str


@dataclass(frozen=True)
class ShowViewIn:
    """A view in a namespace: ``:po kube-system``, as k9s takes it."""

    view: str
    namespace: str | None


Command = ShowView | ShowViewIn | SetNamespace | Quit | Unknown


def parse_command(text: str) -> Command:
    """One ``:`` command line. ``:ns`` alone is the Namespaces view; ``:ns NAME`` switches to it."""
    words = text.strip().lstrip(":").split()
    if not words:
        return Unknown("empty command")
    head, rest = words[0].lower(), words[1:]
    if head in QUIT_WORDS:
        return Quit()
    if head in ("ns", "namespace") and rest:
        return SetNamespace(None if rest[0] in ALL_NAMESPACES else rest[0])
    spec = view_for(head)
    if spec is None:
        return Unknown(f"no view or command {head!r} (try :pods :no :deploy :svc :ev :ns all, or ? for help)")
    if rest:
        return ShowViewIn(spec.name, None if rest[0] in ALL_NAMESPACES else rest[0])
    return ShowView(spec.name)


