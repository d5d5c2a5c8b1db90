"""Shared fixtures: where the corpora are, and (in tests/audio_devices.py) the PulseAudio rig."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _datasets_dir() -> Path:
    env = os.environ.get("SER_DATASETS")
    return (Path(env) if env else REPO_ROOT.parent / "shared" / "datasets").resolve()  # tests link to clips


DATASETS = _datasets_dir()


@pytest.fixture(scope="session")
def datasets() -> Path:
    """Folder holding ravdess/, tess/ and originals/ (``../shared/datasets``, or $SER_DATASETS)."""
    if not (DATASETS / "ravdess").is_dir():
        pytest.skip(f"corpora not found at {DATASETS} (set SER_DATASETS)")
    return DATASETS


pytest_plugins = ["tests.audio_devices"]


# The tiny trained bundle several suites share (built once per session in tests/hostile_audio.py).
from tests.hostile_audio import tiny_bundle  # noqa: E402, F401  (a fixture, registered by import)


@pytest.fixture(autouse=True)
def _private_user_data(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own user data folder (voice profiles, default logs), so no test
    reads or writes the real one, and no test's voice profile adapts another test's model."""
    home = tmp_path_factory.mktemp("xdg-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home
