"""The shipped default bundle in models/: integrity, safe-mode loading, and better-than-chance scores.

Skipped only while models/ holds no bundle at all (before the first trained model is committed).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from ser_model.bundle import DEFAULT_BUNDLE, checkout_models_dir, load_bundle_config, resolve_bundle
from ser_model.corpora import parse_path, scan
from ser_model.labels import LABELS

CHANCE = 1 / len(LABELS)


def _has_any_bundle() -> bool:
    models = checkout_models_dir()
    return models.is_dir() and any((p / "config.json").is_file() for p in models.iterdir() if p.is_dir())


pytestmark = pytest.mark.skipif(
    not _has_any_bundle(), reason=f"no model bundle in {checkout_models_dir()} yet (the training side commits it)"
)


@pytest.fixture(scope="module")
def shipped() -> Path:
    return resolve_bundle(None)


@pytest.fixture(scope="module")
def recognizer(shipped: Path):
    from ser_model.recognizer import EmotionRecognizer

    return EmotionRecognizer.load(shipped)


def test_default_bundle_is_in_models(shipped: Path) -> None:
    assert shipped.parent.resolve() == checkout_models_dir().resolve()
    assert shipped.name.startswith(f"{DEFAULT_BUNDLE}-v")


def test_bundle_is_complete_and_intact(shipped: Path) -> None:
    config = load_bundle_config(shipped)  # validates keys and the weights' SHA-256
    assert config["model_version"] == shipped.name
    assert set(config["labels"]) <= set(LABELS)
    assert (shipped / "MODEL_CARD.md").read_text().strip()
    metrics = json.loads((shipped / "metrics.json").read_text())
    assert isinstance(metrics, dict) and metrics
    assert not list(shipped.rglob("*.pkl")) and not list(shipped.rglob("*.pickle"))


def test_loads_in_keras_safe_mode(shipped: Path) -> None:
    import keras

    import ser_model.layers  # noqa: F401

    config = load_bundle_config(shipped)
    model = keras.saving.load_model(str(shipped / config["weights"]), safe_mode=True, compile=False)
    assert model.outputs[0].shape[-1] == len(config["labels"])


def _validation_speakers(shipped: Path) -> set[str] | None:
    """Speakers metrics.json says the model was validated on (``validation.speakers``), if any."""
    metrics = json.loads((shipped / "metrics.json").read_text())
    validation = metrics.get("validation")
    candidates = [validation.get("speakers") if isinstance(validation, dict) else None]
    candidates += [metrics.get(key) for key in ("validation_speakers", "val_speakers")]
    for speakers in candidates:
        if isinstance(speakers, list) and speakers:
            return set(speakers)
    return None


def _fixed_sample(datasets: Path, speakers: set[str] | None) -> list:
    """All clips of the validation speakers when metrics.json names them; otherwise RAVDESS
    statement 01, repetition 01, normal intensity of every emotion and actor, plus the first 6
    words (sorted) per TESS speaker and emotion."""
    if speakers is not None:
        found = scan(datasets)
        return [c for c in found.clips if c.speaker in speakers]
    clips = []
    for path in sorted((datasets / "ravdess").rglob("03-01-*-01-01-01-*.flac")):
        clip = parse_path(path)
        if clip is not None:
            clips.append(clip)
    per_group: dict[tuple[str, str], int] = defaultdict(int)
    for path in sorted((datasets / "tess").rglob("*.flac")):
        clip = parse_path(path)
        if clip is not None and per_group[(clip.speaker, clip.label)] < 6:
            per_group[(clip.speaker, clip.label)] += 1
            clips.append(clip)
    return clips


def test_scores_clearly_above_chance(shipped: Path, recognizer, datasets: Path) -> None:
    from ser_model.errors import NoSpeechError
    from ser_model.evaluate import classification_metrics

    clips = [c for c in _fixed_sample(datasets, _validation_speakers(shipped)) if c.label in recognizer.labels]
    assert len(clips) >= 100, f"only {len(clips)} clips in the fixed sample"
    y_true, y_pred = [], []
    for clip in clips:
        try:
            result = recognizer.predict_file(clip.path)
        except NoSpeechError:
            continue
        y_true.append(clip.label)
        y_pred.append(result.label)
    assert len(y_true) >= 0.98 * len(clips)
    metrics = classification_metrics(y_true, y_pred, recognizer.labels)
    assert metrics["uar"] > 2 * CHANCE, f"UAR {metrics['uar']:.3f} on {len(y_true)} clips (chance {CHANCE:.3f})"
    assert metrics["accuracy"] > 2 * CHANCE
    reported = json.loads((shipped / "metrics.json").read_text()).get("validation", {})
    if _validation_speakers(shipped) is not None and isinstance(reported.get("uar"), float):
        # Same clips, same weights: inference must reproduce what training measured.
        assert metrics["uar"] == pytest.approx(reported["uar"], abs=0.03), "train/inference mismatch"


def test_predict_in_memory_matches_file(recognizer, datasets: Path) -> None:
    import soundfile as sf

    path = sorted((datasets / "ravdess" / "Actor_03").glob("*.flac"))[10]
    y, rate = sf.read(path, dtype="float32")
    a = recognizer.predict(y, rate)
    b = recognizer.predict_file(path)
    assert a.label == b.label
    assert max(abs(a.probs[k] - b.probs[k]) for k in a.probs) < 1e-4


def test_shipped_v3_head_numpy_matches_keras(datasets: Path) -> None:
    """The shipped ser-v3 head gives the same probabilities in Keras (safe mode) and in the NumPy
    runtime that runs it at inference, on real clips, unadapted and with a 10-clip profile."""
    import keras
    import numpy as np

    import ser_model.layers  # noqa: F401
    from ser_model import np_runtime, v3
    from ser_model.errors import BundleError
    from ser_model.recognizer import EmotionRecognizer

    try:
        folder = resolve_bundle("ser-v3")
    except BundleError as err:
        pytest.skip(f"no shipped ser-v3 bundle: {err}")
    config = load_bundle_config(folder)
    rec = EmotionRecognizer.load(folder, threads=1)
    files = sorted((datasets / "ravdess" / "Actor_05").glob("*.flac"))[::6][:20]
    vecs = [rec.utterance_vector(rec._prepared(*_read(f))) for f in files]
    profile = rec.new_profile()
    for v in vecs[10:]:
        profile.add(v)
    mean, std, prior = v3.read_config(config, str(folder))
    x = np.concatenate([v3.model_input(v, norm_mean=mean, norm_std=std, prior=prior, profile=p)
                        for v in vecs[:10] for p in (None, profile)])
    want = np.asarray(keras.saving.load_model(str(folder / config["weights"]), safe_mode=True,
                                              compile=False).predict(x, verbose=0))
    got = np_runtime.load_numpy_model(folder / config["weights"])(x)
    assert got.shape == want.shape == (20, len(LABELS))
    np.testing.assert_allclose(got, want, atol=1e-5)


def _read(path: Path):
    import soundfile as sf

    y, rate = sf.read(path, dtype="float32")
    return y, rate
