"""Reading the runnable examples out of the docs, and comparing their output with what the
docs show.

A fenced block's info string is its language and then flags:

- ```sh            run, in one bash per document, in order (the blocks build on each other),
                   with `set -euo pipefail`;
- ```sh fails      run too, but its commands are expected to fail (shown with their errors);
- ```sh no-test    shown only: the docs test skips it, explicitly; for blocks that cannot run
                   against the test's suite (make, kubectl, docker), or that say why in a
                   comment on their first line;
- ```json          the output of the sh block before it: its stdout's last JSON value must
                   have the same shape (every key shown, with a value of the same JSON type,
                   and lists of the same length; values are not compared);
- ```text          the output of the sh block before it, line by line (its stderr, or its
                   stdout when it printed nothing to stderr); `...` in a line matches anything;
- ```text no-test, ```json no-test: an illustration, not an output.

Blocks with no info string (pictures, file trees) are neither run nor compared.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`]*)$")


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    flags: frozenset[str]
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


@dataclass
class Example:
    """A runnable sh block and the output blocks that follow it."""

    block: Block
    outputs: list[Block] = field(default_factory=list)

    @property
    def fails(self) -> bool:
        return "fails" in self.block.flags


def blocks(path: Path) -> list[Block]:
    out: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent = len(m["indent"])
        words = m["info"].split()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1  # the closing fence
        if words:
            out.append(Block(path, start + 1, words[0], frozenset(words[1:]), "\n".join(body) + "\n"))
    return out


def examples(path: Path) -> tuple[list[Example], list[Block]]:
    """The runnable examples of a document, and the shell blocks it marks no-test."""
    runnable: list[Example] = []
    skipped: list[Block] = []
    for b in blocks(path):
        if b.lang in ("sh", "bash", "shell"):
            if "no-test" in b.flags:
                skipped.append(b)
            else:
                runnable.append(Example(b))
        elif b.lang in ("json", "text") and "no-test" not in b.flags:
            assert runnable, f"{b.where}: an output block with no sh block before it (mark it no-test)"
            runnable[-1].outputs.append(b)
    return runnable, skipped


# -- comparing ---------------------------------------------------------------------------------


def json_values(text: str) -> list[object]:
    """Every JSON value printed one after another (grpcurl and the CLI print several)."""
    decoder = json.JSONDecoder()
    values, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return values
        try:
            value, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            # a line that is not JSON (jq -r output): skip it
            nl = text.find("\n", i)
            if nl < 0:
                return values
            i = nl + 1
            continue
        values.append(value)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", dict: "object", list: "array", type(None): "null"}[type(value)]


def shape_differences(shown: object, actual: object, path: str = "$") -> list[str]:
    if _kind(shown) != _kind(actual):
        return [f"{path}: shown as {_kind(shown)}, is {_kind(actual)}"]
    if isinstance(shown, dict):
        out = []
        for key, value in shown.items():
            if key not in actual:
                out.append(f"{path}.{key}: shown, but absent")
            else:
                out += shape_differences(value, actual[key], f"{path}.{key}")
        return out
    if isinstance(shown, list):
        if len(shown) != len(actual):
            return [f"{path}: shown with {len(shown)} items, has {len(actual)}"]
        return [d for i, (s, a) in enumerate(zip(shown, actual, strict=True))
                for d in shape_differences(s, a, f"{path}[{i}]")]
    return []


def _line_pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in line.split("...")) + r"\Z")


def text_differences(shown: str, actual: str) -> list[str]:
    want = [line.rstrip() for line in shown.rstrip("\n").splitlines()]
    got = [line.rstrip() for line in actual.rstrip("\n").splitlines()]
    if len(want) != len(got):
        return [f"shown {len(want)} lines, printed {len(got)}:\n" + "\n".join(got)]
    return [f"shown {w!r}, printed {g!r}" for w, g in zip(want, got, strict=True) if not _line_pattern(w).match(g)]
