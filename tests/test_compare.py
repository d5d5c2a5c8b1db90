"""``compare --quick`` on a handful of real clips writes the tables and plots, speaker-independently."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_folds_keep_speakers_apart():
    from ser_model.compare import make_folds

    speakers = np.array([f"ravdess:{a:02d}" for a in range(1, 21) for _ in range(3)] + ["tess:OAF", "tess:YAF"])
    folds = make_folds(speakers, 5)
    assert folds[0] == ["ravdess:01", "ravdess:02", "ravdess:03", "ravdess:04"]
    assert folds[4] == ["ravdess:17", "ravdess:18", "ravdess:19", "ravdess:20"]
    flat = [s for f in folds for s in f]
    assert len(flat) == len(set(flat)) == 20  # every actor tested exactly once, TESS never tested


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_compare_writes_tables_and_plots(tmp_path, datasets):
    from ser_model.compare import main

    text = (REPO / "configs" / "ser-crnn.toml").read_text(encoding="utf-8")
    text = re.sub(r"ravdess_actors = \[.*\]", "ravdess_actors = [1, 2, 3, 4]", text)
    text = re.sub(r"channels = \[.*\]", "channels = [16, 16]", text)
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(text, encoding="utf-8")
    out = tmp_path / "results"
    status = main(["--data", str(datasets), "--out", str(out), "--quick", "--config", str(cfg),
                   "--models", "cnn1d", "svm", "dt", "--cache", str(tmp_path / "cache"), "--no-progress"])
    assert status == 0
    res = json.loads((out / "results.json").read_text())
    assert res["quick"] is True
    assert set(res["models"]) == {"cnn1d", "svm", "dt"}
    assert res["folds"] == [["ravdess:01", "ravdess:02"], ["ravdess:03", "ravdess:04"]]
    for r in res["models"].values():
        for metric in ("uar", "accuracy", "macro_f1"):
            assert 0.0 <= r[metric]["mean"] <= 1.0 and len(r[metric]["folds"]) == 2
        assert len(r["per_class_f1"]) == 7
        # every test clip of the held-out actors was predicted exactly once: 4 actors x 12 clips
        assert np.sum(r["confusion"]) == 4 * 12
    assert res["best"] in res["models"]
    md = (out / "results.md").read_text()
    assert "QUICK MODE" in md and all(f"| {m}" in md for m in ("cnn1d", "svm", "dt"))
    for png in ("confusion_best.png", "per_class_f1.png", "training_curves.png"):
        assert (out / png).stat().st_size > 1000, png


def test_unknown_model_is_one_line_error(tmp_path, capsys, datasets):
    from ser_model.compare import main

    assert main(["--data", str(datasets), "--out", str(tmp_path), "--models", "transformer"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "transformer" in err and "\n" not in err
