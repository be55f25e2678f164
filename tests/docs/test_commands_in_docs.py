"""Every ``paddle-canary`` command the README and docs/ show exists: its subcommands are the
CLI's own and every option it passes is one the CLI accepts (read from the parser that
``paddle-canary --help`` prints), so the docs cannot drift from the code unseen."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys

import pytest

from paddle_canary.cli import build_parser
from paddle_canary.settings import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def shown_commands() -> list[tuple[str, str]]:
    """``(page, command line)`` for each line of a code block that runs ``paddle-canary``."""
    out = []
    for page in PAGES:
        in_code = False
        text = page.read_text(encoding="utf-8").replace("\\\n", " ")  # continuation lines
        for line in text.splitlines():
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            text = line.strip()
            if in_code and text.startswith("paddle-canary "):
                # a comment follows '#' or a run of spaces (aligned descriptions)
                out.append((page.name, re.split(r"\s#|\s{3,}", text)[0].strip()))
    return out


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps no public accessor for them
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def resolve(words: list[str]) -> tuple[list[str], argparse.ArgumentParser, list[str]]:
    """The subcommand path, its parser and the remaining words of one shown command."""
    parser, path = build_parser(), []
    rest = list(words)
    while rest and rest[0] in subparsers(parser):
        path.append(rest[0])
        parser = subparsers(parser)[rest.pop(0)]
    return path, parser, rest


COMMANDS = shown_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 10, COMMANDS


@pytest.mark.parametrize("page,line", COMMANDS, ids=[f"{p}:{c[:50]}" for p, c in COMMANDS])
def test_a_command_shown_in_the_docs_exists(page, line):
    words = shlex.split(re.sub(r"\[[^\]]*\]", " ", line))[1:]  # optional parts left out
    path, parser, rest = resolve(words)
    assert path, f"{page}: {line!r}: no such paddle-canary command"
    try:  # what the CLI itself makes of the line: subcommand, positionals, option values
        build_parser().parse_args(words)
    except SystemExit:
        pytest.fail(f"{page}: {line!r}: paddle-canary refuses these arguments")
    known = options(parser)
    for word in rest:
        if word.startswith("--"):
            flag = word.split("=")[0]
            assert flag in known, f"{page}: {line!r}: {' '.join(path)} has no option {flag}"
        elif re.fullmatch(r"-[a-zA-Z]", word):
            assert word in known, f"{page}: {line!r}: {' '.join(path)} has no option {word}"


def test_help_of_every_subcommand_shown_runs():
    """The installed entry point prints help for each command path the docs use."""
    paths = sorted({tuple(resolve(shlex.split(line)[1:])[0]) for _, line in COMMANDS})
    for path in paths:
        out = subprocess.run([sys.executable, "-m", "paddle_canary.cli", *path, "--help"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "usage: paddle-canary" in out.stdout, (path, out.stderr)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_leads_to_a_file(page):
    for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", page.read_text(encoding="utf-8")):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
