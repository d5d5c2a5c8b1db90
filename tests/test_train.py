"""Training smoke test: the real ``train`` entry point on a few real clips, 1 epoch, into tmp_path.

Checks the bundle it writes is complete and valid, loads in EmotionRecognizer, and that the
recognizer computes exactly the model input that training computed (feature parity).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ser_model.labels import LABELS

REPO = Path(__file__).resolve().parents[1]


def _small_config(tmp_path: Path, *, name: str = "smoke", actors: str = "1, 2, 3, 4", augment_copies: int = 1,
                  channels: str = "16, 16", ensemble: bool = True) -> Path:
    """The shipped recipe shrunk to a smoke test: few actors and channels, written to ``tmp_path``."""
    text = (REPO / "ser_model" / "configs" / "ser-crnn.toml").read_text(encoding="utf-8")
    text = re.sub(r"ravdess_actors = \[.*\]", f"ravdess_actors = [{actors}]", text)
    text = re.sub(r"augment_copies = \d+", f"augment_copies = {augment_copies}", text)
    text = re.sub(r'name = "ser-crnn"', f'name = "{name}"', text)
    text = re.sub(r"channels = \[.*\]", f"channels = [{channels}]", text)
    if not ensemble:  # keep the first [[members]] table only
        tables = re.split(r"\n(?=\[)", text)
        members = [i for i, table in enumerate(tables) if table.startswith("[[members]]")]
        text = "\n".join(table for i, table in enumerate(tables) if i not in members[1:])
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, datasets):
    from ser_model.train import main

    tmp = tmp_path_factory.mktemp("train")
    cfg = _small_config(tmp)
    out = tmp / "bundle"
    status = main(["--config", str(cfg), "--out", str(out), "--data", str(datasets), "--epochs", "1",
                   "--limit-per-speaker", "7", "--cache", str(tmp / "cache"), "--run-dir", str(tmp / "run"),
                   "--no-progress"])
    assert status == 0
    return tmp, out, cfg


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_train_writes_a_valid_bundle(trained):
    from ser_model.bundle import load_bundle_config

    tmp, out, cfg = trained
    for name in ("model.keras", "config.json", "metrics.json", "MODEL_CARD.md", "recipe.toml"):
        assert (out / name).is_file(), name
    config = load_bundle_config(out)  # validates keys and the weights' SHA-256
    assert config["labels"] == list(LABELS)
    assert config["input"]["kind"] == "frames" and config["input"]["max_frames"] > 100
    assert len(config["normalization"]["mean"]) == 64 + 20 + 5
    assert (out / "recipe.toml").read_text() == cfg.read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["epochs_run"] == 1
    # 6 speakers (4 RAVDESS + 2 TESS): 2 RAVDESS actors held out for early stopping
    assert len(metrics["validation"]["speakers"]) == 2
    assert all(s.startswith("ravdess:") for s in metrics["validation"]["speakers"])
    assert metrics["training"]["clips"] + metrics["training"]["validation_clips"] == 6 * 7
    card = (out / "MODEL_CARD.md").read_text()
    assert "CC BY-NC-SA 4.0" in card and "CC BY-NC-ND 4.0" in card and "parameters" in card
    # the shipped recipe is an ensemble: one checkpoint per member, averaged in one model.keras
    members = config["architecture"].split("+")
    assert members[0] == "crnn" and len(members) == len(set(members)) >= 2
    assert set(metrics["validation"]["members"]) == set(members)
    assert {p.name for p in (tmp / "run").glob("checkpoint-*.keras")} == {f"checkpoint-{m}.keras" for m in members}
    assert (tmp / "run" / "history.json").is_file()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_bundle_predicts_and_recognizer_features_match_training(trained, datasets):
    import keras

    import ser_model.layers  # noqa: F401
    from ser_model import EmotionRecognizer
    from ser_model.corpora import parse_path
    from ser_model.dataset import batch_frames, extract_frames

    _, out, _ = trained
    rec = EmotionRecognizer.load(out, jit=False)
    clip_path = next((datasets / "ravdess" / "Actor_01").glob("*.flac"))
    result = rec.predict_file(clip_path)
    assert result.label in LABELS
    assert abs(sum(result.probs.values()) - 1.0) < 1e-4
    assert result.model_version == f"smoke-v{json.loads((out / 'config.json').read_text())['version']}"

    # The training side's input for the same clip gives the same probabilities.
    config = json.loads((out / "config.json").read_text())
    from ser_model.features import FeatureSettings

    frames = extract_frames([parse_path(clip_path)], settings=FeatureSettings.from_dict(config["features"]),
                            progress=False)
    mean = np.array(config["normalization"]["mean"], np.float32)
    std = np.array(config["normalization"]["std"], np.float32)
    x = batch_frames([frames[0]], mean, std, config["input"]["max_frames"])
    model = keras.saving.load_model(out / "model.keras", safe_mode=True, compile=False)
    probs = model.predict(x, verbose=0)[0]
    np.testing.assert_allclose(probs, [result.probs[k] for k in LABELS], atol=1e-4)


def test_bad_config_is_one_line_error(tmp_path, capsys):
    from ser_model.train import main

    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochs = 3\nbogus = 1\n", encoding="utf-8")
    assert main(["--config", str(bad), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "bogus" in err and "\n" not in err
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_refresh_report_puts_cv_results_in_metrics_and_card(trained, tmp_path):
    from ser_model.bundle import load_bundle_config
    from ser_model.train import main

    _, out, cfg = trained
    fake = {"protocol": "test protocol", "command": "ser-model compare --data X", "models": {
        "ensemble": {m: {"mean": 0.61, "std": 0.04, "folds": [0.6, 0.62]} for m in ("uar", "accuracy", "macro_f1")}}}
    results = tmp_path / "results.json"
    results.write_text(json.dumps(fake), encoding="utf-8")
    cfg2 = tmp_path / "cfg.toml"
    cfg2.write_text(re.sub(r'cv_results = ".*?"', f'cv_results = "{results}"', cfg.read_text()), encoding="utf-8")
    assert main(["--config", str(cfg2), "--out", str(out), "--refresh-report"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["cross_validation"]["uar"]["mean"] == 0.61
    assert metrics["cross_validation"]["command"] == "ser-model compare --data X"
    card = (out / "MODEL_CARD.md").read_text()
    assert "| uar | 0.610 | 0.040 |" in card and "does not meet" in card
    load_bundle_config(out)  # weights untouched: the SHA-256 still matches
