"""The README's tour cannot drift: its fast, deterministic blocks (a typed session, its
history, the corpus summary) are re-run and compared by scripts/readme_tour.py --check.
The other blocks (model runs: replay, predict, evaluate) are checked with
``python scripts/readme_tour.py --check`` and regenerated with ``--write``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "readme_tour.py"


def test_readme_tour_fast_blocks_are_current(datasets):
    done = subprocess.run([sys.executable, str(SCRIPT), "--check", "--fast"], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_tour_step_has_a_block_and_a_stale_block_is_caught(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import readme_tour
    finally:
        sys.path.remove(str(SCRIPT.parent))
    present = readme_tour.blocks((REPO / "README.md").read_text(encoding="utf-8"))
    assert {s.name for s in readme_tour.TOUR} == set(present)
    assert all(body.startswith("$ ") for body in present.values())
    # what varies from run to run does not count as drift; a changed reply does
    a = "time: stt 752 ms  total 754 ms\nlog: x/session-20261121-104132-6d3d.jsonl"
    b = "time: stt 31 ms  total 40.5 ms\nlog: x/session-20270101-000000-0000.jsonl"
    assert readme_tour.normalise(a) == readme_tour.normalise(b)
    # another CPU's float kernels move a probability in the 2nd decimal; a new model or label is drift
    shown = "emotion: sad 0.94\n  sad        ███████████████████· 0.94\n  neutral    ···················· 0.01"
    drifted = shown.replace("0.94", "0.93").replace("███████████████████·", "██████████████████··")
    assert readme_tour.same(shown, drifted)
    assert not readme_tour.same(shown, shown.replace("0.94", "0.84"))
    assert not readme_tour.same(shown, shown.replace("emotion: sad", "emotion: happy"))
    assert not readme_tour.same(shown, shown + "\nextra line")
    readme = tmp_path / "README.md"
    text = (REPO / "README.md").read_text(encoding="utf-8")
    readme.write_text(text.replace("$ assistant history\n", "$ assistant history\nnot what it prints\n"))
    done = subprocess.run([sys.executable, str(SCRIPT), "--check", "--only", "assistant-text",
                           "--readme", str(readme)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 1 and "-not what it prints" in done.stdout, done.stdout + done.stderr


@pytest.mark.slow
def test_readme_tour_is_current(datasets):
    """Every block, model runs included (~15 s on a quiet machine): a new shipped model means
    `python scripts/readme_tour.py --write` and a look at the diff."""
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True,
                          cwd=REPO, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
