"""EmotionRecognizer on a small real Keras bundle: probabilities, rates, silence, windows."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_model import EmotionRecognizer as LazyEmotionRecognizer
from ser_model.errors import AudioLoadError, BundleError, NoSpeechError, ParameterError
from ser_model.labels import LABELS
from ser_model.recognizer import EmotionRecognizer
from ser_model.result import EmotionResult
from tests.test_bundle import make_tiny_bundle


def voiced(seconds: float, rate: int, *, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: a harmonic tone with a syllable-rate envelope, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    y = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0 < rate / 2.2)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)
    return (0.2 * y * envelope + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="module")
def rec(bundle: Path) -> EmotionRecognizer:
    return EmotionRecognizer.load(bundle, jit=False)


def test_load_attributes(rec: EmotionRecognizer, bundle: Path) -> None:
    assert rec.path == bundle
    assert rec.labels == LABELS
    assert rec.model_version == "tiny-v1"
    assert rec.config["input"]["kind"] == "frames"
    assert LazyEmotionRecognizer is EmotionRecognizer  # ser_model exposes it lazily


def test_probs_sum_to_one(rec: EmotionRecognizer) -> None:
    result = rec.predict(voiced(3.0, 16000), 16000)
    assert isinstance(result, EmotionResult)
    assert list(result.probs) == list(LABELS)
    assert sum(result.probs.values()) == pytest.approx(1.0, abs=1e-9)
    assert all(0.0 <= p <= 1.0 for p in result.probs.values())
    assert result.label == max(result.probs, key=result.probs.get)
    assert result.confidence == result.probs[result.label]
    assert result.model_version == "tiny-v1"
    assert 0.0 < result.seconds < 5.0


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000])
def test_any_sample_rate(rec: EmotionRecognizer, rate: int) -> None:
    result = rec.predict(voiced(2.5, rate), rate)
    assert sum(result.probs.values()) == pytest.approx(1.0, abs=1e-9)
    assert result.label in LABELS


def test_same_sound_at_different_rates_gives_similar_probs(rec: EmotionRecognizer) -> None:
    a = rec.predict(voiced(3.0, 16000), 16000).probs
    b = rec.predict(voiced(3.0, 48000), 48000).probs
    assert max(abs(a[k] - b[k]) for k in a) < 0.1


def test_int16_pcm_and_float64_accepted(rec: EmotionRecognizer) -> None:
    y = voiced(2.0, 16000)
    as_float = rec.predict(y.astype(np.float64), 16000)
    as_int = rec.predict((y * 32767).astype(np.int16), 16000)
    assert max(abs(as_float.probs[k] - as_int.probs[k]) for k in LABELS) < 0.02


def test_deterministic(rec: EmotionRecognizer) -> None:
    y = voiced(3.0, 22050, seed=3)
    first = rec.predict(y, 22050)
    second = rec.predict(y.copy(), 22050)
    assert first.probs == second.probs and first.label == second.label


def test_longer_than_max_frames_is_cropped(rec: EmotionRecognizer) -> None:
    result = rec.predict(voiced(12.0, 16000), 16000)  # the bundle holds 4 s of frames
    assert sum(result.probs.values()) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    "samples",
    [np.zeros(48000, np.float32), np.full(48000, 1e-6, np.float32), np.zeros(0, np.float32), np.ones(10, np.float32)],
    ids=["digital-silence", "near-silence", "empty", "too-short"],
)
def test_silence_raises_no_speech(rec: EmotionRecognizer, samples: np.ndarray) -> None:
    with pytest.raises(NoSpeechError):
        rec.predict(samples, 16000)


@pytest.mark.parametrize(
    "samples, rate",
    [(np.zeros((2, 16000), np.float32), 16000), (voiced(1.0, 16000), 0), (voiced(1.0, 16000), -8000),
     (voiced(1.0, 16000), "16k"), (np.array(["a", "b"]), 16000)],
    ids=["2-D", "zero-rate", "negative-rate", "text-rate", "text-samples"],
)  # fmt: skip
def test_bad_input_raises_parameter_error(rec: EmotionRecognizer, samples: np.ndarray, rate: object) -> None:
    with pytest.raises(ParameterError):
        rec.predict(samples, rate)  # type: ignore[arg-type]


def _speech_and_silence(rate: int) -> np.ndarray:
    """20 s: 6 s voiced, 6 s digital silence, 8 s voiced."""
    return np.concatenate([voiced(6.0, rate, seed=1), np.zeros(6 * rate, np.float32), voiced(8.0, rate, seed=2)])


def test_predict_windows_on_long_signal(rec: EmotionRecognizer) -> None:
    rate = 16000
    y = _speech_and_silence(rate)
    windows = rec.predict_windows(y, rate, window_s=3.0, hop_s=1.5)
    starts = [w[0] for w in windows]
    assert starts == pytest.approx([1.5 * i for i in range(len(windows))])
    assert windows[-1][1] == pytest.approx(20.0)
    assert all(end - start <= 3.0 + 1e-9 for start, end, _ in windows)
    assert len(windows) == 13  # starts 0, 1.5, ..., 18 (the last one is 2 s long)
    silent = [(s, e) for s, e, r in windows if r is None]
    assert silent == [(6.0, 9.0), (7.5, 10.5), (9.0, 12.0)]  # the windows wholly inside 6-12 s
    for _, _, result in windows:
        if result is not None:
            assert sum(result.probs.values()) == pytest.approx(1.0, abs=1e-9)


def test_predict_windows_short_signal_is_one_window(rec: EmotionRecognizer) -> None:
    windows = rec.predict_windows(voiced(1.0, 8000), 8000, window_s=3.0, hop_s=1.0)
    assert len(windows) == 1 and windows[0][:2] == (0.0, 1.0)


def test_predict_windows_rejects_bad_hop(rec: EmotionRecognizer) -> None:
    with pytest.raises(ParameterError):
        rec.predict_windows(voiced(1.0, 8000), 8000, window_s=1.0, hop_s=2.0)
    with pytest.raises(ParameterError):
        rec.predict_windows(voiced(1.0, 8000), 8000, window_s=0.0)


def test_file_windows_match_in_memory_windows(rec: EmotionRecognizer, tmp_path: Path) -> None:
    rate = 22050
    y = _speech_and_silence(rate)
    path = tmp_path / "long.wav"
    sf.write(path, np.stack([y, y], axis=1), rate, subtype="FLOAT")  # stereo: averaged to mono
    streamed = list(rec.predict_file_windows(path, window_s=3.0, hop_s=1.5))
    in_memory = rec.predict_windows(y, rate, window_s=3.0, hop_s=1.5)
    assert [x for s, e, _ in streamed for x in (s, e)] == pytest.approx([x for s, e, _ in in_memory for x in (s, e)])
    for (_, _, a), (_, _, b) in zip(streamed, in_memory):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.label == b.label
            assert max(abs(a.probs[k] - b.probs[k]) for k in LABELS) < 1e-5


def _peak_traced_bytes(rec: EmotionRecognizer, path: Path) -> tuple[int, int, float]:
    """(windows, peak bytes traced by tracemalloc, end of the last window) for streaming ``path``."""
    tracemalloc.start()
    try:
        n, last_end = 0, 0.0
        for _, end, result in rec.predict_file_windows(path, window_s=5.0, hop_s=5.0):
            assert result is not None
            n, last_end = n + 1, end
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return n, peak, last_end


def test_ten_minute_file_streams_in_bounded_memory(rec: EmotionRecognizer, tmp_path: Path) -> None:
    rate = 16000
    chunk = voiced(10.0, rate)
    paths = {}
    for minutes in (0.5, 10):
        paths[minutes] = tmp_path / f"{minutes}-minutes.wav"
        with sf.SoundFile(paths[minutes], "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
            for _ in range(int(minutes * 6)):
                f.write(chunk)
    _peak_traced_bytes(rec, paths[0.5])  # warm-up: lazy imports inside librosa/scipy
    n_short, peak_short, _ = _peak_traced_bytes(rec, paths[0.5])
    n_long, peak_long, last_end = _peak_traced_bytes(rec, paths[10])
    assert (n_short, n_long) == (6, 120) and last_end == pytest.approx(600.0)
    whole_file = 600 * rate * 4  # the 10-minute file as float32: 38 MB
    assert peak_long < whole_file / 4, f"peak traced memory {peak_long / 1e6:.1f} MB"
    assert peak_long < peak_short + 2_000_000, (
        f"{peak_long / 1e6:.1f} MB for 10 min vs {peak_short / 1e6:.1f} MB for 30 s"
    )


def test_predict_file(rec: EmotionRecognizer, tmp_path: Path) -> None:
    path = tmp_path / "clip.flac"
    sf.write(path, voiced(2.0, 44100), 44100)
    result = rec.predict_file(path)
    assert sum(result.probs.values()) == pytest.approx(1.0, abs=1e-9)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(32000, np.float32), 16000)
    with pytest.raises(NoSpeechError):
        rec.predict_file(silent)


def test_unreadable_file_raises_audio_load_error(rec: EmotionRecognizer, tmp_path: Path) -> None:
    bad = tmp_path / "not-audio.wav"
    bad.write_text("hello")
    with pytest.raises(AudioLoadError):
        rec.predict_file(bad)
    with pytest.raises(AudioLoadError):
        list(rec.predict_file_windows(bad))
    with pytest.raises(AudioLoadError):
        rec.predict_file(tmp_path / "missing.wav")


def test_load_by_env_default_and_bad_bundle(bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SER_MODEL_BUNDLE", str(bundle))
    assert EmotionRecognizer.load().path == bundle
    with pytest.raises(BundleError, match="not a model bundle"):
        EmotionRecognizer.load(tmp_path)


def test_unsafe_lambda_model_refused(tmp_path: Path) -> None:
    """A bundle whose model needs a Lambda layer (arbitrary code) does not load in safe mode."""
    import keras

    from ser_model.bundle import load_bundle_config, save_bundle

    good = make_tiny_bundle(tmp_path / "good")
    config = load_bundle_config(good)
    frames = config["input"]["max_frames"]
    n = len(config["normalization"]["mean"])
    inputs = keras.Input((frames, n))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(len(LABELS), activation="softmax")(x))
    unsafe = save_bundle(tmp_path / "unsafe-v1", model=model, config=config, metrics={}, card="#")
    with pytest.raises(BundleError, match="cannot load the Keras model"):
        EmotionRecognizer.load(unsafe)


def test_xla_compiled_model_gives_the_same_probs(rec: EmotionRecognizer, bundle: Path) -> None:
    assert rec.jit is False
    xla = EmotionRecognizer.load(bundle)
    assert xla.jit is True  # the default
    y = voiced(3.0, 16000, seed=5)
    a, b = rec.predict(y, 16000).probs, xla.predict(y, 16000).probs
    assert max(abs(a[k] - b[k]) for k in LABELS) < 1e-4


def test_predict_accepts_stereo_as_soundfile_reads_it(datasets):
    """The README's ``rec.predict(*sf.read(path))`` works on a stereo file: downmixed like the loader."""
    clip = sorted((datasets / "ravdess").rglob("*.flac"))[5]
    mono, rate = sf.read(str(clip), dtype="float32")
    rec = EmotionRecognizer.load()
    want = rec.predict(mono, rate)
    stereo = np.stack([mono, mono], axis=1)
    got = rec.predict(stereo, rate)
    assert got.label == want.label and got.confidence == pytest.approx(want.confidence, abs=1e-4)
    pcm = (stereo * 32767).astype(np.int16)
    assert rec.predict(pcm, rate).label == want.label
    with pytest.raises(ParameterError):
        rec.predict(np.zeros((2, 2, 2), np.float32), rate)

def test_predict_accepts_n_by_channels_and_downmixes_like_the_loader(tiny_bundle, tmp_path):
    import numpy as np
    import soundfile as sf

    from ser_model.recognizer import EmotionRecognizer

    rec = EmotionRecognizer.load(str(tiny_bundle))
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    left = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + rng.standard_normal(t.size) * 0.1)).astype("float32")
    stereo = np.stack([left, 0.5 * left], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), stereo, 16000, subtype="FLOAT")
    samples, sr = sf.read(str(path), dtype="float32")
    assert samples.shape == (32000, 2)
    from_array = rec.predict(samples, sr)
    from_file = rec.predict_file(path)
    assert from_array.label == from_file.label
    for k, v in from_file.probs.items():
        assert abs(from_array.probs[k] - v) < 1e-3
