"""ser-v3: a tiny recipe trained end to end on a few real clips, then the recognizer's profile API,
the refusal of another encoder, and ``evaluate --adapt`` (labels never reach the adaptation)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ser_model.errors import BundleError, NoSpeechError, ParameterError, SerError
from ser_model.profile import ProfileError, VoiceProfile

RECIPE = """[v3]
name = "ser-v3"
head = "mlp"
hidden = 16
epochs = 2
train_ks = [0, 3, -1]
threads = 1
"""


@pytest.fixture(scope="module")
def v3_bundle(datasets: Path, tmp_path_factory) -> Path:
    from ser_model.train_v3 import main_train

    root = tmp_path_factory.mktemp("v3")
    data = root / "data"
    for actor in ("Actor_01", "Actor_02"):
        files = sorted((datasets / "ravdess" / actor).iterdir())[::7][:8]
        (data / "ravdess" / actor).mkdir(parents=True)
        for f in files:
            (data / "ravdess" / actor / f.name).symlink_to(f)
    cfg = root / "tiny.toml"
    cfg.write_text(RECIPE)

    def log(line: str, *_a) -> None:  # the user edits the recipe while it trains
        if line.startswith("features ready"):
            cfg.write_text(RECIPE.replace("hidden = 16", "hidden = 32"))

    out = main_train(cfg, out_dir=root / "ser-v3", data_dir=data, cache_dir=root / "cache", cv=False, log=log)
    assert cfg.read_text() != RECIPE  # the edit happened while it trained (test_bundle_written relies on it)
    return out


@pytest.fixture(scope="module")
def rec(v3_bundle: Path):
    from ser_model.recognizer import EmotionRecognizer

    return EmotionRecognizer.load(v3_bundle, threads=1)


def _clip(datasets: Path, i: int = 0) -> np.ndarray:
    from ser_model.audio import load_audio

    return load_audio(sorted((datasets / "ravdess" / "Actor_03").iterdir())[i * 5])


def test_bundle_written(v3_bundle: Path) -> None:
    for name in ("model.keras", "config.json", "metrics.json", "MODEL_CARD.md", "recipe.toml"):
        assert (v3_bundle / name).is_file()
    # the recipe it was trained from, read when training started, not the file edited since
    assert (v3_bundle / "recipe.toml").read_text() == RECIPE
    cfg = json.loads((v3_bundle / "config.json").read_text())
    assert cfg["encoder"]["name"] == "whisper-tiny.en" and len(cfg["encoder"]["sha256"]) == 64
    assert cfg["input"]["kind"] == "utterance" and "min_confidence" in cfg


def test_profile_api(rec, datasets: Path) -> None:
    assert rec.supports_profiles
    p = rec.new_profile()
    assert p.count == 0 and p.feature_id == rec.feature_id
    y = _clip(datasets)
    for i in range(1, 6):
        rec.adapt(p, _clip(datasets, i), 16000)
    assert p.count == 5
    plain = rec.predict(y, 16000)
    adapted = rec.predict(y, 16000, p)
    assert plain.probs != adapted.probs  # the profile changes the result
    assert p.count == 5  # learn=False leaves it alone


def test_learn_scores_before_adding(rec, datasets: Path) -> None:
    p = rec.new_profile()
    rec.adapt(p, _clip(datasets, 1), 16000)
    before = copy.deepcopy(p)
    y = _clip(datasets, 2)
    learned = rec.predict(y, 16000, p, learn=True)
    assert p.count == before.count + 1
    assert learned.probs == rec.predict(y, 16000, before).probs  # scored with the profile as it was
    assert learned.probs != rec.predict(y, 16000, p).probs


def test_encode_then_predict_is_predict(rec, datasets: Path) -> None:
    """The assistant encodes at a pause and finishes at the end of the turn: the same result,
    scored with the profile as it is when finished, and learned once."""
    from ser_model.recognizer import EmotionRecognizer

    y = _clip(datasets, 3)
    enc = rec.encode(y, 16000)
    assert enc.model_version == rec.model_version and enc.seconds > 0
    assert rec.predict_encoded(enc).probs == rec.predict(y, 16000).probs
    p = rec.new_profile()
    rec.adapt(p, _clip(datasets, 1), 16000)  # after the encoding: the profile at the end counts
    twin = copy.deepcopy(p)
    assert rec.predict_encoded(enc, p, learn=True).probs == rec.predict(y, 16000, twin, learn=True).probs
    assert p.count == twin.count == 2 and np.array_equal(p.mean, twin.mean)
    old = EmotionRecognizer.load("ser-crnn-v2", jit=False)
    assert old.predict_encoded(old.encode(y, 16000)).probs == old.predict(y, 16000).probs
    with pytest.raises(ParameterError, match="this model"):
        old.predict_encoded(enc)
    with pytest.raises(NoSpeechError):
        rec.encode(np.zeros(16000, np.float32), 16000)


def test_profile_of_other_features_refused(rec, datasets: Path) -> None:
    other = VoiceProfile.new("mfcc:dim=4", 4)
    with pytest.raises(ProfileError, match="reset the profile"):
        rec.predict(_clip(datasets), 16000, other)


def test_bundle_of_another_encoder_refused(v3_bundle: Path, tmp_path: Path) -> None:
    from ser_model.recognizer import EmotionRecognizer

    bad = tmp_path / "ser-v3"
    shutil.copytree(v3_bundle, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["encoder"]["sha256"] = "0" * 64
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError) as info:
        EmotionRecognizer.load(bad)
    assert "\n" not in str(info.value) and "refusing" in str(info.value)


def test_a_recipe_that_reads_encoder_layers(datasets: Path, tmp_path: Path) -> None:
    """``encoder_layers`` = [1, 2, 3, 4]: the bundle records them, the recognizer computes those
    features (the same vector training pooled), and a bundle whose layers were edited is refused."""
    from ser_model.encoder_features import clip_features, feature_id, pool, vector_dim
    from ser_model.recognizer import EmotionRecognizer
    from ser_model.train_v3 import main_train
    from ser_model.whisper_model import shared_whisper

    data = tmp_path / "data"
    files = []
    for actor in ("Actor_01", "Actor_02"):
        (data / "ravdess" / actor).mkdir(parents=True)
        for f in sorted((datasets / "ravdess" / actor).iterdir())[::9][:5]:
            (data / "ravdess" / actor / f.name).symlink_to(f)
            files.append(f)
    cfg = tmp_path / "layers.toml"
    cfg.write_text(RECIPE.replace("threads = 1", "threads = 1\nencoder_layers = [1, 2, 3, 4]"))
    out = main_train(cfg, out_dir=tmp_path / "ser-v3", data_dir=data, cache_dir=tmp_path / "cache", cv=False,
                     log=lambda *a: None)
    config = json.loads((out / "config.json").read_text())
    assert config["encoder"]["layers"] == [1, 2, 3, 4]
    assert config["feature_id"] == feature_id(layers=(1, 2, 3, 4)) != feature_id()
    assert config["features"]["dim"] == vector_dim((1, 2, 3, 4)) == 2 * 4 * 384 + (vector_dim() - 2 * 384)
    rec = EmotionRecognizer.load(out, threads=1)
    assert rec.encoder_layers == (1, 2, 3, 4) and rec.new_profile().dim == vector_dim((1, 2, 3, 4))
    from ser_model.audio import load_audio

    frames, pros = clip_features(shared_whisper(cpu_threads=1), files[0], cache_dir=tmp_path / "cache",
                                 layers=(1, 2, 3, 4))
    live = rec.utterance_vector(load_audio(files[0]))
    np.testing.assert_allclose(live, pool(frames.astype(np.float32), pros), rtol=0.02, atol=0.02)  # float16 cache
    result = rec.predict(load_audio(files[0]), 16000, rec.new_profile())
    assert result.label in config["labels"]
    for layers, why in (([2], "trained on features"), ([4, 1], "encoder layers")):
        bad = tmp_path / f"bad{layers[0]}" / "ser-v3"
        shutil.copytree(out, bad)
        edited = copy.deepcopy(config)
        edited["encoder"]["layers"] = layers
        (bad / "config.json").write_text(json.dumps(edited))
        with pytest.raises(BundleError, match=why) as info:
            EmotionRecognizer.load(bad)
        assert "\n" not in str(info.value)


def test_encoder_layers_in_the_recipe() -> None:
    from ser_model.recipe import HeadRecipe

    assert HeadRecipe().encoder_layers == ()  # no key: the final encoder output (CTranslate2)
    r = HeadRecipe.from_dict({"v3": {"encoder_layers": [1, 2, 3, 4]}})
    assert r.encoder_layers == (1, 2, 3, 4) and HeadRecipe.from_dict(r.to_dict()) == r
    for bad in ([0], [5], [2, 1], [1, 1], ["2"], [True]):
        with pytest.raises(ParameterError, match="encoder layers"):
            HeadRecipe.from_dict({"v3": {"encoder_layers": bad}})


def test_old_bundle_ignores_profiles(datasets: Path) -> None:
    from ser_model.recognizer import EmotionRecognizer

    old = EmotionRecognizer.load("ser-crnn-v2", jit=False)
    assert not old.supports_profiles
    with pytest.raises(SerError):
        old.new_profile()
    y = _clip(datasets)
    assert old.predict(y, 16000, VoiceProfile.new("x", 2), learn=True).probs == old.predict(y, 16000).probs


def test_evaluate_adapt_reads_no_labels(rec, datasets: Path, tmp_path: Path, monkeypatch) -> None:
    from ser_model import evaluate

    d = tmp_path / "Actor_04"
    d.mkdir()
    for f in sorted((datasets / "ravdess" / "Actor_04").iterdir())[::10][:6]:
        (d / f.name).symlink_to(f)
    seen: list = []
    real = evaluate.adaptation_profile

    def spy(recognizer, paths, cache=None):
        seen.append(paths)
        assert all(isinstance(p, Path) for p in paths)  # paths only, no clip (with its label)
        return real(recognizer, paths, cache)

    monkeypatch.setattr(evaluate, "adaptation_profile", spy)
    report = evaluate.evaluate_dir(d, recognizer=rec, adapt=3)
    assert report.n == 6 and report.to_dict()["adapt"] == 3
    assert len(seen) == 6 and all(len(p) == 3 for p in seen)
    assert "adapt" not in evaluate.evaluate_dir(d, recognizer=rec).to_dict()


def test_temperature_keeps_the_label_and_softens() -> None:
    from ser_model.v3 import tempered

    p = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])
    q = tempered(p, 3.0)
    np.testing.assert_allclose(q.sum(1), 1.0)
    assert (q.argmax(1) == p.argmax(1)).all() and (q.max(1) < p.max(1)).all()
    np.testing.assert_allclose(tempered(p, 1.0), p)


def _bank(speakers: list[str], corpus: str = "ravdess", start: int = 0):
    from ser_model.train_v3 import Bank

    n = len(speakers)
    return Bank(vectors=np.arange(start, start + n, dtype=np.float64)[:, None] * np.ones((1, 3)),
                labels=np.arange(n) % 7, speakers=np.array(speakers),
                corpora=np.array([corpus] * n), paths=[f"{corpus}/{i}.flac" for i in range(n)])


@pytest.mark.parametrize("tags", [("0.95", "1.05"), ("ch1", "ch2")], ids=["speed", "channel"])
def test_copies_train_only_where_their_speaker_trains(monkeypatch, tags) -> None:
    """A copy of a tested actor's clip (faster, or through another simulated microphone)
    never trains that fold: it would be the same voice and sentence. Copies of the training
    actors always do, and test clips are never copies."""
    import ser_model.train_v3 as t3
    from ser_model.channel import channel_speaker
    from ser_model.recipe import HeadRecipe

    if tags[0].startswith("ch"):
        assert [channel_speaker("ravdess:01", i) for i in (1, 2)] == [f"ravdess:01@{t}" for t in tags]
    actors = [f"ravdess:{a:02d}" for a in range(1, 7)]
    bank = _bank([a for a in actors for _ in range(2)])
    copies = _bank([f"{a}@{t}" for t in tags for a in actors for _ in range(2)], start=100)
    assert set(t3.original_speaker(copies.speakers)) == set(actors)

    rows = t3.training_rows(bank, np.isin(bank.speakers, actors[:2]), copies)
    assert sorted(set(rows.speakers)) == sorted(actors[:2] + [f"{a}@{t}" for a in actors[:2] for t in tags])
    assert len(rows.labels) == 4 * 3 and rows.vectors.shape == (12, 3)
    assert t3.training_rows(bank, bank.speakers == actors[0]).speakers.tolist() == [actors[0]] * 2

    trained: list[set[str]] = []

    def fit(rows, s):
        trained.append(set(rows.speakers.tolist()))
        return None

    def score(head, vectors, speakers, *, adapt_k, seed):
        assert not any("@" in sp for sp in speakers)
        p = np.full((len(speakers), 7), 1 / 7)
        return {"unadapted": p, "adapted": p}

    monkeypatch.setattr(t3, "fit_rows", fit)
    monkeypatch.setattr(t3, "score_protocols", score)
    res = t3.cross_validate(bank, HeadRecipe(n_folds=3, corpora=("ravdess",)), copies=copies, log=lambda *a: None)
    assert len(trained) == 3
    for test_actors, spk in zip(res["folds"], trained):
        assert not set(t3.original_speaker(np.array(sorted(spk)))) & set(test_actors)
        assert len(spk) == 3 * (len(actors) - len(test_actors))  # each training actor and both its copies


def test_speed_factors_in_the_recipe() -> None:
    from ser_model.recipe import HeadRecipe

    r = HeadRecipe.from_dict({"v3": {"speed_factors": [0.95, 1.05]}})
    assert r.speed_factors == (0.95, 1.05) and HeadRecipe.from_dict(r.to_dict()) == r
    for bad in ([1.0], [3.0], ["fast"]):
        with pytest.raises(ParameterError, match="speed_factors"):
            HeadRecipe.from_dict({"v3": {"speed_factors": bad}})


def test_clip_features_of_a_faster_copy(datasets: Path, tmp_path: Path) -> None:
    from ser_model.encoder_features import clip_features
    from ser_model.whisper_model import shared_whisper

    path = sorted((datasets / "ravdess" / "Actor_03").iterdir())[0]
    model = shared_whisper(cpu_threads=1)
    frames, pros = clip_features(model, path, cache_dir=tmp_path)
    fast, fast_pros = clip_features(model, path, cache_dir=tmp_path, speed=1.25)
    assert len(list(tmp_path.glob("*.npz"))) == 2  # cached apart
    assert abs(len(fast) - len(frames) / 1.25) <= 3
    f0 = 0  # PROSODY_NAMES[0], the mean F0 in semitones: 1.25x faster is 12 log2(1.25) = 3.9 higher
    assert 2.9 < fast_pros[f0] - pros[f0] < 4.9
    again, _ = clip_features(None, path, cache_dir=tmp_path, speed=1.25)  # from the cache, no model
    assert np.array_equal(again, fast)


def test_feature_caches_survive_a_copied_or_touched_dataset_not_a_changed_clip(datasets: Path, tmp_path: Path) -> None:
    """Keyed by name and content: a dataset copied elsewhere or with new mtimes (as ../shared
    gets between sessions) reuses every cached clip; a clip whose bytes changed is recomputed."""
    import os

    import soundfile as sf

    from ser_model.corpora import Clip
    from ser_model.dataset import _key
    from ser_model.encoder_features import clip_features
    from ser_model.features import FeatureSettings
    from ser_model.whisper_model import shared_whisper

    def bulk_key(p: Path) -> str:  # the key of dataset.py's one-file-per-set caches
        return _key("pooled", [Clip(p, "ravdess", "neutral", "ravdess:03", "male", "neutral")],
                    FeatureSettings(), None, 0, 0)

    src = sorted((datasets / "ravdess" / "Actor_03").iterdir())[0]
    first, moved = tmp_path / "a" / src.name, tmp_path / "b" / src.name
    for p in (first, moved):
        p.parent.mkdir()
        shutil.copyfile(src, p)
    os.utime(moved, (1_000_000_000, 1_000_000_000))
    cache = tmp_path / "cache"
    model = shared_whisper(cpu_threads=1)
    frames, _ = clip_features(model, first, cache_dir=cache)
    again, _ = clip_features(None, moved, cache_dir=cache)  # no model: it must come from the cache
    assert np.array_equal(again, frames) and len(list(cache.glob("*.npz"))) == 1
    assert bulk_key(first) == bulk_key(moved)

    y, rate = sf.read(moved)
    sf.write(moved, y * 0.5, rate, format="FLAC")  # the same clip, 6 dB quieter
    assert bulk_key(moved) != bulk_key(first)
    clip_features(model, moved, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 2  # recomputed and cached apart, not read from the old entry


def test_channel_copies_in_the_recipe() -> None:
    from ser_model.recipe import HeadRecipe

    assert HeadRecipe().channel_copies == 0  # off by default
    r = HeadRecipe.from_dict({"v3": {"channel_copies": 2, "channel_corpora": ["ravdess"]}})
    assert r.channel_copies == 2 and HeadRecipe.from_dict(r.to_dict()) == r
    for bad in (-1, 1.5, True, "two", 9):
        with pytest.raises(ParameterError, match="channel_copies"):
            HeadRecipe.from_dict({"v3": {"channel_copies": bad}})


def test_channel_copy_is_deterministic_and_one_device_per_speaker(datasets: Path) -> None:
    from ser_model.audio import load_audio
    from ser_model.channel import ChannelCopy

    paths = sorted((datasets / "ravdess" / "Actor_03").iterdir())[:2]
    y = load_audio(paths[0])
    a = ChannelCopy(1, "ravdess:03")(y, sample_rate=16000, clip=paths[0])
    assert a.shape == y.shape and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, ChannelCopy(1, "ravdess:03")(y, sample_rate=16000, clip=paths[0]))
    assert not np.allclose(a, y, atol=1e-3)
    assert not np.array_equal(a, ChannelCopy(2, "ravdess:03")(y, sample_rate=16000, clip=paths[0]))
    assert not np.array_equal(a, ChannelCopy(1, "ravdess:04")(y, sample_rate=16000, clip=paths[0]))
    # the same device for another clip of the speaker: only the noise samples differ
    b = ChannelCopy(1, "ravdess:03")(y, sample_rate=16000, clip=paths[1])
    assert not np.array_equal(a, b) and np.corrcoef(a, b)[0, 1] > 0.5
    assert ChannelCopy(1, "ravdess:03").cache_tag() != ChannelCopy(2, "ravdess:03").cache_tag()


def test_clip_features_of_a_channel_copy(datasets: Path, tmp_path: Path) -> None:
    from ser_model.channel import ChannelCopy
    from ser_model.encoder_features import clip_features, pool
    from ser_model.whisper_model import shared_whisper

    path = sorted((datasets / "ravdess" / "Actor_03").iterdir())[0]
    model = shared_whisper(cpu_threads=1)
    frames, pros = clip_features(model, path, cache_dir=tmp_path)
    ch = ChannelCopy(1, "ravdess:03")
    copy_frames, copy_pros = clip_features(model, path, cache_dir=tmp_path, channel=ch)
    assert len(list(tmp_path.glob("*.npz"))) == 2  # cached apart
    assert not np.allclose(pool(copy_frames, copy_pros), pool(frames, pros), atol=1e-3)
    again, _ = clip_features(None, path, cache_dir=tmp_path, channel=ch)  # from the cache, no model
    assert np.array_equal(again, copy_frames)


def test_build_bank_names_each_device_a_speaker(datasets: Path, tmp_path: Path) -> None:
    from ser_model.corpora import scan
    from ser_model.recipe import HeadRecipe
    from ser_model.train_v3 import build_bank, training_copies

    d = tmp_path / "data" / "ravdess" / "Actor_03"
    d.mkdir(parents=True)
    for f in sorted((datasets / "ravdess" / "Actor_03").iterdir())[:2]:
        (d / f.name).symlink_to(f)
    clips = scan(tmp_path / "data").clips
    assert training_copies(clips, HeadRecipe(), cache_dir=tmp_path / "c") is None
    copies = training_copies(clips, HeadRecipe(channel_copies=2, threads=1), cache_dir=tmp_path / "c")
    assert copies.speakers.tolist() == ["ravdess:03@ch1"] * 2 + ["ravdess:03@ch2"] * 2
    assert copies.labels.tolist() == build_bank(clips, cache_dir=tmp_path / "c", threads=1).labels.tolist() * 2
