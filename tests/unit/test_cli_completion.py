"""``nodeos completion``: scripts generated from the parser, checked by the shells that run them."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from nodeos.cli.completion import fish, script, tree, walk
from nodeos.cli.main import build_parser, main


@pytest.fixture(scope="module")
def root():
    return tree(build_parser())


def test_the_tree_has_every_verb_and_their_sub_commands(root):
    assert {"get", "logs", "exec", "scale", "rollout", "cordon", "uncordon", "drain", "top", "events", "version",
            "completion"} <= set(root.subcommands)
    assert set(root.subcommands["rollout"].subcommands) == {"status", "restart", "undo", "history"}
    assert "--replicas" in root.subcommands["scale"].flags
    assert root.subcommands["completion"].choices == ["bash", "zsh", "fish"]
    assert "--kubeconfig" in root.flags


def complete(bash_script: str, *words: str) -> list[str]:
    """What bash offers after ``nodeos <words>`` (the last word being completed), running the script."""
    line = " ".join(f"'{w}'" for w in ("nodeos", *words))
    asked = f'COMP_WORDS=({line}); COMP_CWORD={len(words)}; _nodeos; printf "%s\\n" "${{COMPREPLY[@]}}"'
    program = f"{bash_script}\n{asked}"
    return subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout.split()


@pytest.mark.parametrize(("words", "offered"), [
    (("rol",), ["rollout"]),
    (("rollout", ""), ["status", "restart", "undo", "history", "-h", "--help"]),
    (("-n", "shop", "rollout", "status", "--ti"), ["--timeout"]),
    (("completion", "z"), ["zsh"]),
    (("drain", "node-1", "--ig"), ["--ignore-daemonsets"]),
    (("top", "p"), ["pod", "pods", "po"]),
])
def test_bash_completes_from_the_parser(root, words, offered):
    assert complete(script("bash", root), *words) == offered


def test_the_command_prints_a_script_bash_accepts(capsys):
    assert main(["completion", "bash"]) == 0
    text = capsys.readouterr().out
    assert text.endswith("complete -F _nodeos nodeos\n")
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_zsh_uses_the_same_function_through_bashcompinit(root):
    text = script("zsh", root)
    assert text.startswith("#compdef nodeos\n") and "bashcompinit" in text and "complete -F _nodeos nodeos" in text
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n"], input=text, text=True, check=True)


def test_fish_has_a_line_per_word_under_its_path(root):
    text = fish(root)
    assert "complete -c nodeos -n '__fish_use_subcommand' -a rollout -d 'manage the rollout of a Deployment'" in text
    assert ("complete -c nodeos -n '__fish_seen_subcommand_from rollout; and not __fish_seen_subcommand_from "
            "status restart undo history' -a undo") in text
    assert "complete -c nodeos -n '__fish_seen_subcommand_from rollout; and __fish_seen_subcommand_from status' " \
           "-l timeout" in text
    assert len(walk(root)) > 20
    if shutil.which("fish"):
        subprocess.run(["fish", "--no-execute"], input=text, text=True, check=True)


def test_an_unknown_shell_is_a_usage_error(capsys):
    assert main(["completion", "tcsh"]) == 2
    assert "invalid choice: 'tcsh'" in capsys.readouterr().err
