"""The NumPy Whisper encoder the emotion features read (ser_model/whisper_layers.py)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from ser_model.whisper_model import WhisperModelError, bundled_model_dir


def _mel(seconds: float = 2.0) -> tuple[np.ndarray, object]:
    from ser_model.whisper_model import shared_whisper

    model = shared_whisper(cpu_threads=1)
    rng = np.random.default_rng(0)
    t = np.arange(int(16000 * seconds)) / 16000
    y = (0.3 * np.sin(2 * np.pi * 180 * t * (1 + 0.1 * np.sin(3 * t))) + 0.02 * rng.standard_normal(t.size))
    from ser_model.encoder_features import log_mel

    return log_mel(model, y.astype(np.float32)), model


def test_final_output_matches_ctranslate2_float32() -> None:
    """Same weights, same arithmetic: the last output is CTranslate2's float32 encoder output."""
    import ctranslate2
    from faster_whisper import WhisperModel

    from ser_model.whisper_layers import shared_layers

    mel, _ = _mel()
    ref_model = WhisperModel(str(bundled_model_dir()), device="cpu", compute_type="float32", cpu_threads=1)
    ref = np.asarray(ref_model.model.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=False))[0]
    outs = shared_layers()(mel)
    assert len(outs) == 5 and all(o.shape == (mel.shape[1] // 2, 384) and o.dtype == np.float32 for o in outs)
    assert np.abs(outs[-1] - ref).max() < 1e-3 * max(1.0, float(np.abs(ref).max()))
    # the layers differ from each other (a wiring slip that returned one array four times would not)
    assert min(np.abs(outs[i] - outs[i + 1]).mean() for i in range(3)) > 0.05


def test_encoder_frames_are_the_layers_side_by_side() -> None:
    from ser_model.encoder_features import encoder_frames, feature_id, log_mel, vector_dim
    from ser_model.whisper_layers import shared_layers

    _, model = _mel(1.0)
    rng = np.random.default_rng(1)
    y = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    frames = encoder_frames(model, y, (1, 2, 3, 4))
    outs = shared_layers()(log_mel(model, y))
    assert frames.shape == (len(outs[0]), 4 * 384)
    assert np.allclose(frames[:, 384:768], outs[1]) and np.allclose(frames[:, -384:], outs[3])
    assert np.allclose(encoder_frames(model, y, (2,)), outs[1])
    last = encoder_frames(model, y)  # the default: CTranslate2's int8 final output
    assert last.shape == outs[4].shape and np.corrcoef(last.ravel(), outs[4].ravel())[0, 1] > 0.99
    assert ":layers=1234+" in feature_id(layers=(1, 2, 3, 4)) and f"dim={vector_dim((1, 2, 3, 4))}" in \
        feature_id(layers=(1, 2, 3, 4))
    assert "layers" not in feature_id()  # the shipped bundle's id is unchanged


def _write_model(path: Path, spec: str, arrays: dict[str, np.ndarray], *, version: int = 6,
                 cut: int = 0) -> None:
    def s(text: str) -> bytes:
        raw = text.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    body = struct.pack("<I", version) + s(spec) + struct.pack("<I", 3) + struct.pack("<I", len(arrays))
    for name, a in arrays.items():
        a = np.asarray(a, dtype=np.float16)
        data = a.tobytes()
        body += s(name) + struct.pack("<B", a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape)
        body += struct.pack("<BI", 4, len(data)) + data
    path.write_bytes(body[: len(body) - cut] if cut else body)


def test_bad_model_files_are_refused_in_one_line(tmp_path: Path) -> None:
    from ser_model.whisper_layers import WhisperLayers, read_encoder_arrays

    good = tmp_path / "ok.bin"
    _write_model(good, "WhisperSpec", {"encoder/conv1/bias": np.ones(3), "decoder/x": np.zeros(2)})
    arrays = read_encoder_arrays(good)
    assert list(arrays) == ["conv1/bias"] and arrays["conv1/bias"].dtype == np.float32  # decoder skipped
    with pytest.raises(WhisperModelError, match="not a 4-layer Whisper encoder"):
        WhisperLayers(arrays, where="ok.bin")
    other = tmp_path / "other.bin"
    _write_model(other, "TransformerSpec", {"encoder/conv1/bias": np.ones(3)})
    with pytest.raises(WhisperModelError, match="not a Whisper model"):
        read_encoder_arrays(other)
    short = tmp_path / "short.bin"
    _write_model(short, "WhisperSpec", {"encoder/conv1/bias": np.ones(30)}, cut=10)
    with pytest.raises(WhisperModelError, match="ends inside encoder/conv1/bias"):
        read_encoder_arrays(short)
    with pytest.raises(WhisperModelError, match="cannot read"):
        read_encoder_arrays(tmp_path / "missing.bin")


def test_gelu_matches_the_exact_normal_cdf() -> None:
    """The float32 erfc-based GELU against scipy's ndtr in float64, tails included."""
    from scipy.special import ndtr

    from ser_model.whisper_layers import _gelu

    x = np.linspace(-12, 12, 20001, dtype=np.float32)
    want = x.astype(np.float64) * ndtr(x.astype(np.float64))
    got = _gelu(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert abs(got[0]) < 1e-30 and got[-1] == np.float32(12)  # tails: 0 and x
