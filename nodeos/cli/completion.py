"""``nodeos completion bash|zsh|fish``: a shell completion script, generated from the parser itself.

Walking the argparse tree (verbs, their sub-commands, their flags, the
choices of flags and arguments) keeps completion true to the parser with
no dependency and no hook calling back into Python on each TAB (which
argcomplete needs). Object names are not completed: that would mean a
call to the API server on each TAB.

Install: ``nodeos completion bash > /etc/bash_completion.d/nodeos``,
``nodeos completion zsh > "${fpath[1]}/_nodeos"``,
``nodeos completion fish > ~/.config/fish/completions/nodeos.fish``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

SHELLS = ("bash", "zsh", "fish")


@dataclass
class Command:
    """One level of the command tree: its sub-commands, flags and word choices."""

    path: tuple[str, ...]
    subcommands: dict[str, Command] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)  # words a positional may be
    help: dict[str, str] = field(default_factory=dict)  # sub-command -> its help


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("completion", help="print a shell completion script",
                              description="Print a completion script for bash, zsh or fish.")
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nodeos.cli.main import build_parser  # here, not at the top: main imports this module
    print(script(args.shell, tree(build_parser())), end="")
    return 0


def tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("nodeos",)) -> Command:
    """The command tree under ``parser``."""
    node = Command(path)
    for action in parser._actions:  # argparse has no public walk of its tree
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                node.subcommands[name] = tree(sub, (*path, name))
                node.help[name] = helps.get(name, "")
        elif action.option_strings:
            node.flags.extend(o for o in action.option_strings if o.startswith("--") or len(o) == 2)
        elif action.choices:
            node.choices.extend(str(c) for c in action.choices)
    return node


def walk(node: Command) -> list[Command]:
    return [node, *(c for sub in node.subcommands.values() for c in walk(sub))]


def words(node: Command) -> list[str]:
    """What may follow this command: its sub-commands, or its choices, then its flags."""
    return [*node.subcommands, *node.choices, *node.flags]


def script(shell: str, root: Command) -> str:
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](root)


def bash(root: Command) -> str:
    """A function that finds the deepest known command in the words typed so far and offers its words."""
    cases = "\n".join(f'        "{" ".join(c.path[1:])}") words="{" ".join(words(c))}" ;;' for c in walk(root))
    return f"""# nodeos bash completion; load with: source <(nodeos completion bash)
_nodeos() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" path="" candidate word words i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        [[ "$word" == -* ]] && continue
        candidate="${{path:+$path }}$word"
        _nodeos_words "$candidate" && path="$candidate"
    done
    _nodeos_words "$path"
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
_nodeos_words() {{
    words=""
    case "$1" in
{cases}
        *) return 1 ;;
    esac
}}
complete -F _nodeos nodeos
"""


def zsh(root: Command) -> str:
    """zsh runs the bash function through bashcompinit: one logic for both shells."""
    return "#compdef nodeos\n# nodeos zsh completion\nautoload -U +X bashcompinit && bashcompinit\n" \
        + bash(root).split("\n", 1)[1]


def fish(root: Command) -> str:
    """One ``complete`` line per word, conditioned on the sub-command path typed so far."""
    lines = ["# nodeos fish completion; load with: nodeos completion fish | source", "complete -c nodeos -f"]
    for node in walk(root):
        condition = _fish_condition(node)
        for name in node.subcommands:
            about = node.help.get(name, "").replace("'", "")
            lines.append(f"complete -c nodeos -n '{condition}' -a {name} -d '{about}'")
        for choice in node.choices:
            lines.append(f"complete -c nodeos -n '{condition}' -a {choice}")
        for flag in node.flags:
            option = f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}"
            lines.append(f"complete -c nodeos -n '{condition}' {option}")
    return "\n".join(lines) + "\n"


def _fish_condition(node: Command) -> str:
    """True when the typed words are exactly this node's path (and no deeper sub-command yet)."""
    if len(node.path) == 1:
        return "__fish_use_subcommand"
    seen = "; and ".join(f"__fish_seen_subcommand_from {word}" for word in node.path[1:])
    deeper = " ".join(node.subcommands)
    return f"{seen}; and not __fish_seen_subcommand_from {deeper}" if deeper else seen
