"""A shortened soak (bench/soak.py): 60 replayed turns, sampled at turn 20 and at turn 60.

Checks that every turn is logged as valid JSONL, resident memory grows by less than 50 MB
between the samples, and neither threads nor open file descriptors grow. The full run is
``.venv/bin/python bench/soak.py --turns 300``.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.hostile_audio import REPO_ROOT, tiny_bundle  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _bench_soak():
    spec = importlib.util.spec_from_file_location("bench_soak", REPO_ROOT / "bench" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sixty(tmp_path_factory, datasets, tiny_bundle) -> dict:
    # sphinx, as this test has always measured: the loop's own growth. Whisper (the default
    # engine now) grows RSS by ~1.0 MB/turn over turns 20-60 and ~0.46 MB/turn over 60-140
    # (bench/soak.py), flattening but not yet flat: an open finding, measured by the bench.
    return _bench_soak().soak(turns=60, baseline=20, model=str(tiny_bundle), datasets=datasets,
                              log_dir=tmp_path_factory.mktemp("soak") / "logs", timeout=240, stt="sphinx")


def test_sixty_turn_replay_is_stable(sixty) -> None:
    r = sixty
    assert r["problems"] == [], r
    assert r["rc"] == 0, r
    assert r["turns_logged"] == 61
    assert r["rss_growth_mb"] < 50, r
    assert r["thread_growth"] <= 0, r
    assert r["fd_growth"] <= 0, r


def test_pick_files_mixes_corpora_and_is_deterministic(datasets) -> None:
    soak = _bench_soak()
    a = soak.pick_files(datasets, 10)
    assert a == soak.pick_files(datasets, 10)
    assert {"ravdess", "tess"} <= {p.relative_to(datasets).parts[0] for p in a}


def test_memory_per_turn_would_fit_300_turns(sixty) -> None:
    """The slope, extrapolated to the 280 turns of the full soak, must stay well inside the
    50 MB budget (half of it). The full soak measured +53.6 MB from turn 20 to 300."""
    r = sixty
    per_turn = r["rss_growth_mb"] / (r["end"]["turn"] - r["baseline"]["turn"])
    assert per_turn * 280 < 25, f"{per_turn * 1024:.0f} KB per turn -> {per_turn * 280:.0f} MB over 280 turns"
