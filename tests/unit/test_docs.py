"""The guides say only what is true: links resolve, commands and settings exist.

Every Markdown file under ``docs/`` and the README is read. A relative link or image must
name a file that exists (and, for a Markdown target with ``#anchor``, a heading there); a
``python app.py <command> [<sub>] [--option]`` in a code span or block must be a command,
sub-command and option of the real command line (introspected, so commands added later are
known at once); a ``WARDEN_…``, ``MICROSOFT_APP_…`` or ``AZURE_…`` variable must be a setting
``core.settings`` reads.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer

from app import cli
from core.settings.table import settings_table

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^ {0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
HTML_LINK = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.I)
INVOCATION = re.compile(r"\bpython3?\s+app\.py\b((?:[ \t]+[^\s`]+)*)")
VARIABLE = re.compile(r"\b(?:WARDEN|MICROSOFT_APP|AZURE)_[A-Za-z0-9_]*(?:<[A-Za-z_]+>[A-Z0-9_]*)*")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
SHELL_END = re.compile(r"\s(?:#|&&|\|\||;)\s?|[;>]")


def markdown_files() -> list[Path]:
    """The README and every Markdown file under ``docs/``."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def split_code(markdown: str) -> tuple[str, list[str]]:
    """The prose of ``markdown`` with code removed, and the code: fenced blocks, then spans."""
    prose: list[str] = []
    code: list[str] = []
    block: list[str] | None = None
    for line in markdown.splitlines():
        if FENCE.match(line):
            if block is None:
                block = []
            else:
                code.append("\n".join(block))
                block = None
            continue
        (prose if block is None else block).append(line)
    if block is not None:
        code.append("\n".join(block))
    text = "\n".join(prose)
    code += [match.group(2) for match in CODE_SPAN.finditer(text)]
    return CODE_SPAN.sub(" ", text), code


def link_targets(markdown: str) -> list[str]:
    """Every link and image target outside code (inline, reference-style and HTML)."""
    prose, _ = split_code(markdown)
    found = [m.group(1) for m in INLINE_LINK.finditer(prose)]
    found += [m.group(1) for m in REFERENCE_LINK.finditer(prose)]
    return found + [m.group(1) for m in HTML_LINK.finditer(prose)]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of ``markdown`` (``-1``, ``-2`` for repeats)."""
    prose, _ = split_code(markdown)
    anchors: set[str] = set()
    for line in prose.splitlines():
        match = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match is None:
            continue
        anchor = slug(match.group(1))
        numbered, count = anchor, 0
        while numbered in anchors:
            count += 1
            numbered = f"{anchor}-{count}"
        anchors.add(numbered)
    return anchors


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    kept = "".join(
        ch
        for ch in text.strip().lower()
        if ch in " -_" or unicodedata.category(ch)[0] in "LN" or unicodedata.category(ch) == "Mn"
    )
    return kept.replace(" ", "-")


def broken_links(path: Path) -> list[str]:
    """The relative link targets of the Markdown file ``path`` that lead nowhere."""
    markdown = path.read_text(encoding="utf-8")
    broken = []
    for target in link_targets(markdown):
        if EXTERNAL.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists() or not _has_anchor(resolved, anchor):
            broken.append(target)
    return broken


def _has_anchor(path: Path, anchor: str) -> bool:
    """True unless ``anchor`` is given for a Markdown file without a heading of that anchor."""
    if not anchor or path.suffix != ".md" or not path.is_file():
        return True
    return anchor.lower() in heading_anchors(path.read_text(encoding="utf-8"))


@cache
def command_line() -> Any:
    """Warden's real command line, as click sees it (a group of commands and groups)."""
    group = typer.main.get_command(cli)
    assert subcommands(group), "the command line has no commands"
    return group


def subcommands(command: Any) -> dict[str, Any] | None:
    """The commands of a group by name; None for a command that is not a group."""
    found = getattr(command, "commands", None)
    return found if isinstance(found, dict) else None


def invocations(markdown: str) -> Iterator[list[str]]:
    """The words after each ``python app.py`` in the code of ``markdown`` (shell ends cut)."""
    _, code = split_code(markdown)
    for text in code:
        for line in text.splitlines():
            for match in INVOCATION.finditer(line):
                words = SHELL_END.split(match.group(1), maxsplit=1)[0]
                yield words.split()


def unknown_commands(words: list[str], root: Any = None) -> list[str]:
    """What in one invocation's ``words`` the command line does not have.

    ``a | b`` lists alternatives (README style, ``dlq list | show ID``): each may start with
    another sub-command of the same group, else it goes on with the same command.
    Placeholders (``<…>``, ``…``, ``ID``, ``[FILE]``) are arguments and pass; every
    ``--option`` must belong to the command it follows.
    """
    group = subcommands(root or command_line()) or {}
    alternatives: list[list[str]] = [[]]
    for word in words:
        if word == "|":
            alternatives.append([])
        else:
            alternatives[-1].append(word.strip("[]()"))
    first = alternatives[0]
    if not first or not _is_name(first[0]):
        return []
    command = group.get(first[0])
    if command is None:
        return [f"command {first[0]!r}"]
    problems: list[str] = []
    parent = subcommands(command)
    leaf = command
    for index, alternative in enumerate(alternatives):
        rest = alternative[1:] if index == 0 else alternative
        if parent is not None and rest and _is_name(rest[0]):
            for name in rest[0].split("|"):
                if name and name not in parent:
                    problems.append(f"command '{first[0]} {name}'")
            leaf = parent.get(rest[0].split("|")[0], command)
            rest = rest[1:]
        problems += [f"option {word!r} of {leaf.name!r}" for word in rest if not _has(leaf, word)]
    return problems


def _is_name(word: str) -> bool:
    """A command name as docs write one (not a placeholder, an option or an argument)."""
    return bool(re.fullmatch(r"[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*", word))


def _has(command: Any, word: str) -> bool:
    """True unless ``word`` is an option ``command`` does not take."""
    if not word.startswith("--"):
        return True
    name = word.split("=", 1)[0].rstrip(",.")
    if name == "--help":
        return True
    return any(name in (*p.opts, *p.secondary_opts) for p in command.params)


@cache
def known_variables() -> frozenset[str]:
    """Every environment variable Warden's settings read (the configuration table's)."""
    return frozenset(re.findall(r"^\| `([A-Z][A-Z0-9_]*)`", settings_table(), re.M))


def unknown_variables(markdown: str, known: frozenset[str] | None = None) -> list[str]:
    """The ``WARDEN_…``, ``MICROSOFT_APP_…`` and ``AZURE_…`` names no setting reads.

    ``NAME_*`` or ``NAME_…`` stands for every variable it starts; ``<NAME>`` for any part.
    """
    names = known if known is not None else known_variables()
    problems = []
    for match in VARIABLE.finditer(markdown):
        mention = match.group(0)
        after = markdown[match.end() : match.end() + 1]
        pattern = re.sub(r"<[A-Za-z_]+>", "[A-Z0-9_]+", mention)
        if after in ("*", "…") or mention.endswith("_"):
            pattern += ".*"
        if not any(re.fullmatch(pattern, name) for name in names):
            problems.append(mention)
    return problems


DOCS = markdown_files()
IDS = [str(path.relative_to(ROOT)) for path in DOCS]


@pytest.mark.parametrize("path", DOCS, ids=IDS)
def test_docs_relative_links_lead_to_files_and_headings(path: Path) -> None:
    """Every relative link and image of a guide names a file (and heading) that exists."""
    assert broken_links(path) == []


@pytest.mark.parametrize("path", DOCS, ids=IDS)
def test_docs_commands_are_real_commands_and_options(path: Path) -> None:
    """Every ``python app.py …`` a guide shows is a command the command line has."""
    problems = [
        f"{' '.join(words)}: {problem}"
        for words in invocations(path.read_text(encoding="utf-8"))
        for problem in unknown_commands(words)
    ]
    assert problems == []


@pytest.mark.parametrize("path", DOCS, ids=IDS)
def test_docs_variables_are_real_settings(path: Path) -> None:
    """Every Warden, bot or Azure variable a guide names is one the settings read."""
    assert unknown_variables(path.read_text(encoding="utf-8")) == []


def test_guides_exist_for_each_reader() -> None:
    """The operator's, reviewer's and auditor's guides are there."""
    for name in ("operator.md", "reviewer.md", "auditor.md"):
        assert (ROOT / "docs" / name).is_file(), name


def test_broken_link_checker_flags_missing_file_and_heading(tmp_path: Path) -> None:
    """A link to a missing file or heading is reported; good ones and URLs are not."""
    (tmp_path / "there.md").write_text("# Backups and keys\n\ntext\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [anchor](there.md#backups-and-keys) [web](https://example.com/x)\n"
        "[gone](missing.md) ![img](img/none.png) [bad anchor](there.md#restores)\n"
        "`[in code](nowhere.md)`\n\n[ref]: also-missing.md\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "missing.md",
        "img/none.png",
        "there.md#restores",
        "also-missing.md",
    ]


def test_command_checker_flags_unknown_command_sub_command_and_option() -> None:
    """An invented command, sub-command or option is reported; real ones are not."""
    text = (
        "```sh\npython app.py dlq list              # the queue\n"
        "python app.py nosuch thing\npython app.py dlq explode 4\n"
        "python app.py audit verify --store --deep\n```\n"
        "Run `python app.py catalog check [FILE]` or `python app.py keys generate | rotate`.\n"
    )
    found = [unknown_commands(words) for words in invocations(text)]
    assert found == [
        [],
        ["command 'nosuch'"],
        ["command 'dlq explode'"],
        ["option '--deep' of 'verify'"],
        [],
        [],
    ]


def test_command_checker_reads_alternatives_per_sub_command() -> None:
    """``dlq list | replay --all`` is two commands; ``--all`` belongs to ``replay`` only."""
    alternatives = "dlq list | show ID | replay --all | purge ID"
    assert unknown_commands(alternatives.split(" ")) == []
    assert unknown_commands(["dlq", "list", "--all"]) == ["option '--all' of 'list'"]


def test_variable_checker_flags_unknown_names_and_reads_patterns() -> None:
    """An unknown variable is reported; ``<NAME>`` and ``*`` patterns match real ones."""
    known = frozenset({"WARDEN_MODE", "WARDEN_CONNECTORS__POLICY__ENABLED", "AZURE_CLIENT_ID"})
    text = (
        "`WARDEN_MODE`, `WARDEN_CONNECTORS__<NAME>__ENABLED`, `AZURE_CLIENT_ID`, "
        "`WARDEN_CONNECTORS__*`, `WARDEN_MODES`, `AZURE_SUBSCRIPTION_ID`"
    )
    assert unknown_variables(text, known) == ["WARDEN_MODES", "AZURE_SUBSCRIPTION_ID"]


def test_real_settings_include_the_bot_and_azure_names() -> None:
    """The settings table lists the un-prefixed names the settings read, too."""
    assert {"MICROSOFT_APP_ID", "AZURE_CLIENT_ID", "WARDEN_MODE"} <= known_variables()
