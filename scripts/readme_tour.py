#!/usr/bin/env python
"""The README's tour, produced by real runs: each block between ``<!-- tour:NAME -->`` and
``<!-- /tour -->`` is the commands of one step of TOUR below and what they print.

    python scripts/readme_tour.py --check            # exit 1 with a diff when a block is stale
    python scripts/readme_tour.py --write            # rewrite the blocks from fresh runs
    python scripts/readme_tour.py --check --only assistant-text,ser-corpus   # some blocks

Commands run from the repository root with this interpreter's console scripts, their own
temporary user-data folder (so session logs land in a fresh ``~/.local/share/...``) and
``COLUMNS=100``. What legitimately varies between runs is normalised before comparing: times
in ms, session ids and timestamps, the temporary folders. ``--write`` keeps the real values
of one run. When the shipped model changes, ``--write`` regenerates the blocks; review the
diff. ``../shared/datasets`` in a command is replaced by ``$SER_DATASETS`` when that folder
is elsewhere.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BIN = Path(sys.executable).parent
DATA = "../shared/datasets"
LOG_DIR_SHOWN = "~/.local/share/empathetic-assistant/sessions"


@dataclass(frozen=True)
class Command:
    """One command as the README shows it, and which of its output lines the README keeps."""

    line: str
    stdin: str | None = None
    keep: str | None = None
    """Regex: show only matching lines (e.g. the dialogue of a typed session)."""
    head: int | None = None
    """Show only the first lines (a long report's headline)."""
    drop: str = r"^\[[a-z ]+\]"
    """Regex of lines never shown (the plain UI's state lines such as ``[listening]``)."""


@dataclass(frozen=True)
class Step:
    name: str
    commands: tuple[Command, ...] = field(default_factory=tuple)
    fast: bool = False
    """Deterministic and a few seconds: checked by the test suite."""


R11 = f"{DATA}/ravdess/Actor_11/03-01-04-02-02-01-11.flac"
R12 = f"{DATA}/ravdess/Actor_12/03-01-03-02-01-01-12.flac"
ANGRY = f"{DATA}/ravdess/Actor_11/03-01-05-02-01-01-11.flac"
SAD = f"{DATA}/tess/YAF_sad/YAF_back_sad.flac"

TOUR: tuple[Step, ...] = (
    Step("assistant-replay", (Command(f"assistant --input {R11} {R12} --no-speak --plain"),)),
    Step("assistant-text", (
        Command("assistant --text --no-speak --plain",
                stdin="I lost my job today and I don't know what to do\nthanks, that helps a bit\nbye\n",
                keep=r"^(you:|assistant \()"),
        Command("assistant history"),
    ), fast=True),
    Step("ser-predict", (
        Command(f"ser-model predict {ANGRY} {SAD} missing.wav"),
        Command(f"ser-model predict --json {SAD}"),
    )),
    Step("ser-evaluate", (Command(f"ser-model evaluate {DATA}/ravdess/Actor_03", head=2),)),
    Step("ser-corpus", (Command(f"ser-model corpus {DATA}"),), fast=True),
)


def data_dir() -> str:
    """Where ``../shared/datasets`` really is for this run."""
    if (REPO / DATA).is_dir() or not os.environ.get("SER_DATASETS"):
        return DATA
    return os.environ["SER_DATASETS"]


def run_command(cmd: Command, home: Path) -> str:
    """Run one command; return ``$ line`` and its shown output (stderr in order with stdout)."""
    argv = shlex.split(cmd.line.replace(DATA, data_dir()))
    argv[0] = str(BIN / argv[0])
    env = {**os.environ, "COLUMNS": "100", "XDG_DATA_HOME": str(home), "NO_COLOR": "1",
           "TERM": "dumb", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(argv, input=cmd.stdin if cmd.stdin is not None else "", stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env, timeout=600)
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    lines = [line for line in lines if not re.match(cmd.drop, line)]
    if cmd.keep:
        lines = [line for line in lines if re.match(cmd.keep, line)]
    while lines and not lines[0]:  # what a transient progress display leaves behind
        lines.pop(0)
    if cmd.head:
        lines = lines[: cmd.head]
    text = "\n".join(lines)
    text = text.replace(str(home / "empathetic-assistant" / "sessions"), LOG_DIR_SHOWN)
    if data_dir() != DATA:
        text = text.replace(data_dir(), DATA)
    shown = [f"$ {cmd.line}", *([text] if text else [])]
    if done.returncode:
        shown.append(f"(exit status {done.returncode})")
    return "\n".join(shown)


def run_step(step: Step) -> str:
    """The body of a step's block: its commands and outputs, a blank line between commands."""
    with tempfile.TemporaryDirectory(prefix="readme-tour-") as home:
        return "\n\n".join(run_command(cmd, Path(home)) for cmd in step.commands)


_NORMALISE = (
    (re.compile(r"\d+(\.\d+)? ms\b"), "<N> ms"),
    (re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{4}\b"), "<session>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?"), "<time>"),
    (re.compile(r"\(\d+(\.\d+)? s\)"), "(<S> s)"),
)


def normalise(text: str) -> str:
    """``text`` with what varies from run to run replaced by placeholders."""
    for pattern, repl in _NORMALISE:
        text = pattern.sub(repl, text)
    return text


_NUMBER = re.compile(r"\d+\.\d+")
_BAR = re.compile(r"[█·]+")
TOLERANCE = 0.02
"""Probabilities may differ by this much: the encoder's float kernels differ between CPUs (an
AMD EPYC here gave 0.93 where the README's machine gave 0.94), and a new model moves more."""


def same(old: str, now: str) -> bool:
    """``old`` and ``now`` (normalised) say the same: equal, or line by line equal but for
    decimal numbers within ``TOLERANCE`` of each other (and the bars drawn from them)."""
    if old == now:
        return True
    a, b = old.splitlines(), now.splitlines()
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x == y:
            continue
        if _NUMBER.sub("#", _BAR.sub("|", x)) != _NUMBER.sub("#", _BAR.sub("|", y)):
            return False
        if any(abs(float(u) - float(v)) > TOLERANCE for u, v in zip(_NUMBER.findall(x), _NUMBER.findall(y))):
            return False
    return True


BLOCK = re.compile(r"(<!-- tour:(?P<name>[a-z0-9-]+) -->\n```text\n)(?P<body>.*?)\n?(```\n<!-- /tour -->)", re.S)


def blocks(readme: str) -> dict[str, str]:
    """Name -> body of each tour block in the README."""
    return {m["name"]: m["body"] for m in BLOCK.finditer(readme)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="readme_tour.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 with a diff when a block is stale")
    mode.add_argument("--write", action="store_true", help="rewrite the blocks from fresh runs")
    p.add_argument("--only", metavar="NAMES", help="comma-separated step names (default: all)")
    p.add_argument("--fast", action="store_true", help="only the fast, deterministic steps")
    p.add_argument("--readme", type=Path, default=README, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    readme = args.readme.read_text(encoding="utf-8")
    present = blocks(readme)
    steps = [s for s in TOUR if (not args.fast or s.fast)]
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {s.name for s in TOUR})
        if unknown:
            p.error(f"unknown step(s) {', '.join(unknown)}; steps: {', '.join(s.name for s in TOUR)}")
        steps = [s for s in steps if s.name in wanted]
    missing = [s.name for s in steps if s.name not in present]
    if missing:
        print(f"readme_tour.py: README has no block for {', '.join(missing)} "
              f"(add '<!-- tour:NAME -->', a ```text fence, and '<!-- /tour -->')", file=sys.stderr)
        return 1
    fresh = {s.name: run_step(s) for s in steps}
    if args.write:
        new = BLOCK.sub(lambda m: m[1] + fresh.get(m["name"], m["body"]) + "\n" + m[4], readme)
        if new != readme:
            args.readme.write_text(new, encoding="utf-8")
        print(f"wrote {len(fresh)} tour block(s) in {args.readme}")
        return 0
    stale = 0
    for name, body in fresh.items():
        old, now = normalise(present[name]), normalise(body)
        if not same(old, now):
            stale += 1
            sys.stdout.writelines(difflib.unified_diff(
                (old + "\n").splitlines(keepends=True), (now + "\n").splitlines(keepends=True),
                f"README.md tour:{name}", f"fresh run of tour:{name}"))
    if stale:
        print(f"{stale} tour block(s) stale: run python scripts/readme_tour.py --write", file=sys.stderr)
        return 1
    print(f"{len(fresh)} tour block(s) up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
