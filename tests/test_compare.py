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

    text = (REPO / "ser_model" / "configs" / "ser-crnn.toml").read_text(encoding="utf-8")
    text = re.sub(r"ravdess_actors = \[.*\]", "ravdess_actors = [1, 2, 3, 4]", text)
    text = re.sub(r"channels = \[.*\]", "channels = [16, 16]", text)
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(text, encoding="utf-8")
    out = tmp_path / "results"
    status = main(["--data", str(datasets), "--out", str(out), "--quick", "--config", str(cfg),
                   "--models", "cnn1d", "lstm", "svm", "dt", "--cache", str(tmp_path / "cache"), "--no-progress"])
    assert status == 0
    res = json.loads((out / "results.json").read_text())
    assert res["quick"] is True
    assert set(res["models"]) == {"cnn1d", "lstm", "svm", "dt"}
    assert res["folds"] == [["ravdess:01", "ravdess:02"], ["ravdess:03", "ravdess:04"]]
    for r in res["models"].values():
        for metric in ("uar", "accuracy", "macro_f1"):
            assert 0.0 <= r[metric]["mean"] <= 1.0 and len(r[metric]["folds"]) == 2
        assert len(r["per_class_f1"]) == 7
        # every test clip of the held-out actors was predicted exactly once: 4 actors x 12 clips
        assert np.sum(r["confusion"]) == 4 * 12
    assert res["best"] in res["models"]
    # the neural models' held-out probabilities are saved, so other ensembles can be scored later
    with np.load(out / "fold_probs.npz", allow_pickle=False) as z:
        assert set(z.files) == {"labels", "fold", "probs_cnn1d", "probs_lstm"}
        probs, labels, fold = z["probs_cnn1d"], z["labels"], z["fold"]
        mean_probs = (z["probs_cnn1d"] + z["probs_lstm"]) / 2
    assert probs.shape == (4 * 12, 7) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert sorted(set(fold.tolist())) == [0, 1] and np.bincount(fold).tolist() == [24, 24]
    confusion = np.zeros((7, 7), int)
    np.add.at(confusion, (labels, probs.argmax(axis=1)), 1)
    assert confusion.tolist() == res["models"]["cnn1d"]["confusion"]
    # --rescore adds another ensemble's row from those probabilities, without training
    assert main(["--rescore", "--out", str(out), "--config", str(cfg), "--ensemble", "cnn1d+lstm"]) == 0
    again = json.loads((out / "results.json").read_text())
    row = again["models"]["cnn1d+lstm"]
    assert row["members"] == ["cnn1d", "lstm"] and len(row["uar"]["folds"]) == 2
    expected = np.zeros((7, 7), int)
    np.add.at(expected, (labels, mean_probs.argmax(axis=1)), 1)
    assert row["confusion"] == expected.tolist()
    assert {m: again["models"][m] for m in res["models"]} == res["models"]  # the trained rows are kept
    assert "| cnn1d+lstm" in (out / "results.md").read_text()
    assert main(["--rescore", "--out", str(out), "--config", str(cfg), "--ensemble", "cnn1d+svm"]) == 2
    md = (out / "results.md").read_text()
    assert "QUICK MODE" in md and all(f"| {m}" in md for m in ("cnn1d", "svm", "dt"))
    for png in ("confusion_best.png", "per_class_f1.png", "training_curves.png"):
        assert (out / png).stat().st_size > 1000, png


def test_unknown_model_is_one_line_error(tmp_path, capsys, datasets):
    from ser_model.compare import main

    assert main(["--data", str(datasets), "--out", str(tmp_path), "--models", "transformer"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "transformer" in err and "\n" not in err


def test_each_ensemble_member_gets_its_own_settings():
    from ser_model.errors import ParameterError
    from ser_model.neural import ARCHITECTURES
    from ser_model.recipe import Recipe, load_recipe

    cfg = load_recipe(REPO / "ser_model" / "configs" / "ser-crnn.toml")
    assert cfg.member_names == ["crnn", "lstm", "cnn1d", "cnn2d"]  # every architecture, the CRNN first
    assert set(cfg.member_names) == set(ARCHITECTURES)
    for name in cfg.member_names:
        assert cfg.member(name).architecture == name
    assert cfg.member("lstm").rnn_units == 64 and cfg.member("cnn1d").channels == (64, 64, 128, 128)
    # the 2-D model reads the log-mel bands, which come first in the frame features
    assert cfg.features.parts[0] == "logmel"
    assert cfg.member("cnn2d").image_bins == cfg.features.n_mels
    with pytest.raises(ParameterError, match=r"no \[\[members\]\] table for 'lstm'"):
        Recipe(members=(cfg.model,)).member("lstm")


def test_cnn2d_rejects_more_image_bins_than_features():
    from dataclasses import replace

    from ser_model.errors import ParameterError
    from ser_model.neural import build_model
    from ser_model.recipe import load_recipe

    settings = replace(load_recipe(REPO / "ser_model" / "configs" / "ser-crnn.toml").member("cnn2d"), image_bins=90)
    with pytest.raises(ParameterError, match=r"image_bins must be in 1\.\.89"):
        build_model((32, 89), 7, settings)
