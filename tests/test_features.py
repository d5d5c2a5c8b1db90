"""Feature extraction: shapes, units, determinism, invariances, settings round-trip, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser_model.errors import ParameterError
from ser_model.features import (
    SPECTRAL_NAMES,
    FeatureSettings,
    frame_features,
    pooled_features,
)

SR = 16000


def _sine(freq: float, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _speechlike(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 150 + 30 * np.sin(2 * np.pi * 2 * t)
    y = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in range(1, 8))
    return (0.3 * y * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2) + 0.01 * rng.standard_normal(t.size)).astype(
        np.float32
    )


def test_frame_shape_dtype_and_frame_count():
    s = FeatureSettings()
    y = _speechlike(3.0)
    x = frame_features(y, settings=s)
    assert x.dtype == np.float32
    assert x.shape == (1 + len(y) // s.hop_length, s.n_frame_features)
    assert x.shape[0] == s.frames_for(3.0)
    assert s.n_frame_features == 64 + 20 + len(SPECTRAL_NAMES)  # default parts: logmel, mfcc_delta, spectral
    assert np.all(np.isfinite(x))


def test_parts_select_columns_in_canonical_order():
    s_all = FeatureSettings(parts=("spectral", "logmel", "mfcc", "mfcc_delta"), utterance_norm="none")
    assert s_all.parts == ("logmel", "mfcc", "mfcc_delta", "spectral")
    y = _speechlike()
    full = frame_features(y, settings=s_all)
    mel_only = frame_features(y, settings=FeatureSettings(parts=("logmel",), utterance_norm="none"))
    spec_only = frame_features(y, settings=FeatureSettings(parts=("spectral",), utterance_norm="none"))
    np.testing.assert_array_equal(full[:, :64], mel_only)
    np.testing.assert_array_equal(full[:, -5:], spec_only)


def test_deterministic():
    s = FeatureSettings()
    y = _speechlike()
    np.testing.assert_array_equal(frame_features(y, settings=s), frame_features(y.copy(), settings=s))
    np.testing.assert_array_equal(pooled_features(y, settings=s), pooled_features(y.copy(), settings=s))


def test_logmel_matches_librosa_in_db():
    import librosa

    s = FeatureSettings(parts=("logmel",), utterance_norm="none")
    y = _speechlike()
    ref = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=s.n_fft, win_length=s.win_length, hop_length=s.hop_length,
                                         n_mels=s.n_mels, fmin=s.fmin, fmax=s.fmax, power=2.0)
    ref_db = 10 * np.log10(np.maximum(ref.T, 1e-10))
    ours = frame_features(y, settings=s)
    loud = ref_db > ref_db.max() - 60  # compare where there is signal; the floor differs by design
    np.testing.assert_allclose(ours[loud], ref_db[loud], atol=0.05)


def test_spectral_units_on_a_sine():
    s = FeatureSettings(parts=("spectral",), utterance_norm="none")
    x = frame_features(_sine(1000.0), settings=s)[2:-2]  # skip edge frames (padding)
    energy, zcr, centroid, rolloff, flatness = x.T
    assert np.allclose(zcr, 2 * 1000 / SR, atol=0.01)  # crossings per sample
    assert np.allclose(centroid, 1.0, atol=0.1)  # kHz
    assert np.allclose(rolloff, 1.0, atol=0.1)  # kHz
    assert np.all(flatness < 0.05)  # tonal
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    assert frame_features(noise, settings=s)[2:-2, 4].mean() > 0.5  # white noise is flat
    louder = frame_features(_sine(1000.0, amp=1.0), settings=s)[2:-2, 0]
    assert np.allclose(louder - energy, 20 * np.log10(2), atol=0.01)  # dB


def test_mean_normalisation_removes_gain():
    s = FeatureSettings(parts=("logmel", "mfcc_delta"), utterance_norm="mean", top_db=200)
    y = _speechlike()
    a = frame_features(y, settings=s)
    b = frame_features(0.25 * y, settings=s)
    np.testing.assert_allclose(a, b, atol=1e-3)
    np.testing.assert_allclose(a.mean(axis=0), 0, atol=1e-3)
    mv = frame_features(y, settings=FeatureSettings(utterance_norm="meanvar"))
    np.testing.assert_allclose(mv[:, :64].std(axis=0), 1, atol=0.05)


def test_short_input_gives_one_frame_and_pooled_shape():
    s = FeatureSettings()
    assert frame_features(np.zeros(10, np.float32) + 0.1, settings=s).shape == (1, s.n_frame_features)
    p = pooled_features(_speechlike(), settings=s)
    assert p.shape == (s.n_pooled_features,) and p.dtype == np.float32 and np.all(np.isfinite(p))


@pytest.mark.parametrize("bad", [np.zeros((2, 100), np.float32), np.zeros(0, np.float32),
                                 np.array([0.0, np.nan, 0.1], np.float32)])
def test_bad_samples_raise_parameter_error(bad):
    with pytest.raises(ParameterError):
        frame_features(bad, settings=FeatureSettings())
    with pytest.raises(ParameterError):
        pooled_features(bad, settings=FeatureSettings())


def test_settings_round_trip_through_json():
    s = FeatureSettings(n_mels=80, hop_length=160, parts=("logmel", "mfcc"), utterance_norm="meanvar")
    d = json.loads(json.dumps(s.to_dict()))
    assert FeatureSettings.from_dict(d) == s
    assert FeatureSettings.from_dict({}) == FeatureSettings()


@pytest.mark.parametrize("kwargs", [{"parts": ("pitch",)}, {"parts": ()}, {"utterance_norm": "z"},
                                    {"win_length": 1024}, {"fmax": 9000.0}, {"n_mfcc": 100}, {"delta_width": 4}])
def test_invalid_settings_raise(kwargs):
    with pytest.raises(ParameterError):
        FeatureSettings(**kwargs)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ParameterError, match="unknown"):
        FeatureSettings.from_dict({"n_mels": 64, "colour": "blue"})


def test_feature_caches_are_written_whole_and_leave_no_temporary_file(tmp_path):
    from ser_model.outpaths import save_npz_atomic

    path = tmp_path / "cache" / "key.npz"
    save_npz_atomic(path, frames=np.ones((3, 2), np.float16), prosody=np.arange(4.0))
    save_npz_atomic(path, frames=np.zeros((1, 2), np.float16), prosody=np.arange(2.0))  # replaced whole
    with np.load(path, allow_pickle=False) as z:
        assert z["frames"].shape == (1, 2) and list(z["prosody"]) == [0.0, 1.0]
    assert [p.name for p in path.parent.iterdir()] == ["key.npz"]
