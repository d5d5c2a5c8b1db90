"""Nothing of TensorFlow's, absl's or Keras' own logging reaches the user's stderr.

TensorFlow 2.21 writes absl and oneDNN lines to file descriptor 2 when it loads, even with
``TF_CPP_MIN_LOG_LEVEL=2``; ``ser_model.tf_quiet`` is the one place that prevents it. These
tests run the real command lines in child processes whose environment has none of the TF
variables set (so the code, not the caller, must keep stderr clean) and compare stderr with
exactly the lines our own code writes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.hostile_audio import SER_MODEL, corpus_clips, run_cli

REPO = Path(__file__).resolve().parents[1]
FOREIGN = re.compile(r"absl|oneDNN|InitializeLog|cpu_feature_guard|^[IWE]\d{4} |tensorflow", re.I | re.M)


def _bare_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any TensorFlow/absl variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TF_", "ABSL_")) and k != "SER_MODEL_BUNDLE"}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def test_keras_backend_predict_writes_nothing_to_stderr(tiny_bundle: Path, datasets: Path) -> None:
    clip = corpus_clips(datasets, 1)[0]
    done = run_cli([SER_MODEL, "predict", "--model", str(tiny_bundle), str(clip)],
                   env=_bare_env(SER_MODEL_BACKEND="keras"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    assert str(clip) in done.stdout


def test_keras_backend_bad_file_is_our_one_line_only(tiny_bundle: Path, datasets: Path, tmp_path: Path) -> None:
    clip = corpus_clips(datasets, 1)[0]
    missing = tmp_path / "missing.wav"
    done = run_cli([SER_MODEL, "predict", "--model", str(tiny_bundle), str(clip), str(missing)],
                   env=_bare_env(SER_MODEL_BACKEND="keras"))
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ser-model:") and "missing.wav" in lines[0], done.stderr
    assert not FOREIGN.search(done.stderr)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_train_writes_no_foreign_lines_to_stderr(tmp_path: Path, datasets: Path) -> None:
    from tests.test_train import _small_config

    cfg = _small_config(tmp_path, name="quiet", actors="1, 2", augment_copies=0, channels="8", ensemble=False)
    done = run_cli([SER_MODEL, "train", "--config", str(cfg), "--out", str(tmp_path / "out"), "--data", str(datasets),
                    "--epochs", "1", "--limit-per-speaker", "3", "--cache", str(tmp_path / "cache"),
                    "--run-dir", str(tmp_path / "run"), "--no-progress"], env=_bare_env(), timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not FOREIGN.search(done.stderr), done.stderr[-2000:]
    assert (tmp_path / "out" / "model.keras").is_file()
