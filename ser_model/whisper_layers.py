"""The Whisper tiny.en encoder in NumPy, returning every layer's output, not only the last.

CTranslate2 (faster-whisper's runtime) gives the encoder's final output only. For emotion the
middle layers carry more: on the 5-fold RAVDESS-actor CV with a logistic regression over
mean + std pooled frames plus prosody, the final output gave UAR 0.663 unadapted / 0.744
standardised per speaker, layers 1-4 side by side 0.737 / 0.838; RAVDESS -> TESS 0.401 /
0.467 against 0.441 / 0.674 (``scripts/v3_layers.py``). A ser-v3 recipe with
``encoder_layers`` reads them: the shipped ``models/ser-v3`` reads layers 1 and 4
(``ser_model/configs/ser-v3.toml``); layers 2-3 carry the microphone and room, which cost it
the new corpus (``models/ser-v3/MODEL_CARD.md``, "Which encoder layers"). Speech-to-text keeps
CTranslate2.

The weights are read from the same ``model.bin`` the speech-to-text loads (CTranslate2's own
file format: a header, then named float16 arrays), after its SHA-256 check
(:func:`ser_model.whisper_model.verify_weights`), and computed in float32. The result matches
CTranslate2's float32 encoder to ~1e-5 (``tests/test_whisper_layers.py``). Only the encoder's
arrays are read (33 MB as float32). 3 s of speech (300 log-mel frames) takes ~43 ms on one
core here, nearly all of it matrix products at the core's float32 peak (CTranslate2's int8
encoder: ~22 ms); ``bench/ser_latency.py`` times the whole predict on trimmed utterances.
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ser_model.whisper_model import TINY_EN_SHA256, WhisperModelError, bundled_model_dir, verify_weights

N_LAYERS = 4
WIDTH = 384
_DTYPES = {0: np.float32, 4: np.float16}  # CTranslate2's DataType enum: FLOAT32, FLOAT16


def _string(f: BinaryIO) -> str:
    (n,) = struct.unpack("<H", f.read(2))
    return f.read(n).rstrip(b"\0").decode("utf-8")


def read_encoder_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The ``encoder/...`` arrays of a CTranslate2 Whisper ``model.bin`` (format version >= 4), as
    float32, keyed without the ``encoder/`` prefix. WhisperModelError when the file is not one."""
    out: dict[str, np.ndarray] = {}
    try:
        with open(path, "rb") as f:
            (version,) = struct.unpack("<I", f.read(4))
            if version < 4:
                raise WhisperModelError(f"{path}: CTranslate2 model format {version} is too old (need >= 4)")
            spec = _string(f)
            if spec != "WhisperSpec":
                raise WhisperModelError(f"{path}: not a Whisper model ({spec or 'no spec name'})")
            f.read(4)  # spec revision
            (count,) = struct.unpack("<I", f.read(4))
            for _ in range(count):
                name = _string(f)
                (rank,) = struct.unpack("<B", f.read(1))
                dims = struct.unpack(f"<{rank}I", f.read(4 * rank))
                dtype, nbytes = struct.unpack("<BI", f.read(5))
                if not name.startswith("encoder/"):
                    f.seek(nbytes, 1)
                    continue
                if dtype not in _DTYPES and name != "encoder/num_heads":
                    raise WhisperModelError(f"{path}: {name} is stored as type {dtype}, not float16/float32")
                raw = f.read(nbytes)
                if len(raw) != nbytes:
                    raise WhisperModelError(f"{path}: the file ends inside {name}")
                kind = _DTYPES.get(dtype, np.int16)
                out[name[len("encoder/"):]] = np.frombuffer(raw, dtype=kind).reshape(dims).astype(np.float32)
    except (OSError, struct.error, ValueError, UnicodeDecodeError) as err:
        raise WhisperModelError(f"cannot read the Whisper encoder from {path}: {err}") from None
    return out


# Abramowitz & Stegun 7.1.26: erfc(z) = t (a1 + t (a2 + ... a5 t)) exp(-z^2), t = 1 / (1 + p z),
# z >= 0, absolute error <= 1.5e-7
_P = np.float32(0.3275911)
_A = tuple(np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))
_SQRT_HALF = np.float32(np.sqrt(0.5))


def _gelu(x: np.ndarray) -> np.ndarray:
    """x * Phi(x), the exact GELU CTranslate2 runs (not the tanh approximation, 5e-4 off), to
    4e-7 here in float32 (scipy's ``ndtr``: the same error, 5x slower; it was a third of
    the encoder's time). With h = Phi(-|x|) = erfc(|x| / sqrt 2) / 2, x Phi(x) = max(x, 0) - |x| h."""
    z = np.abs(x) * _SQRT_HALF
    t = _P * z
    t += 1
    np.reciprocal(t, out=t)
    h = _A[4] * t
    for a in _A[3::-1]:
        h += a
        h *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    h *= z
    h *= np.float32(0.5)
    h *= np.abs(x)
    return np.maximum(x, 0) - h


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + np.float32(1e-5)) * gamma + beta


class WhisperLayers:
    """Whisper encoder (pre-norm transformer: two GELU convolutions, sinusoidal positions, N
    layers of self-attention and feed-forward, a final layer norm) over one log-mel (80, n)."""

    def __init__(self, arrays: dict[str, np.ndarray], *, where: str = "model.bin") -> None:
        need = ["conv1/weight", "conv1/bias", "conv2/weight", "conv2/bias", "position_encodings/encodings",
                "layer_norm/gamma", "layer_norm/beta", "num_heads"]
        for i in range(N_LAYERS):
            for part in ("self_attention/layer_norm/gamma", "self_attention/layer_norm/beta",
                         "self_attention/linear_0/weight", "self_attention/linear_0/bias",
                         "self_attention/linear_1/weight", "self_attention/linear_1/bias",
                         "ffn/layer_norm/gamma", "ffn/layer_norm/beta", "ffn/linear_0/weight",
                         "ffn/linear_0/bias", "ffn/linear_1/weight", "ffn/linear_1/bias"):
                need.append(f"layer_{i}/{part}")
        missing = [k for k in need if k not in arrays]
        if missing or f"layer_{N_LAYERS}/ffn/linear_0/bias" in arrays:
            raise WhisperModelError(f"{where}: not a {N_LAYERS}-layer Whisper encoder "
                                    f"({'missing ' + missing[0] if missing else 'more layers'})")
        if arrays["conv2/weight"].shape != (WIDTH, WIDTH, 3):
            raise WhisperModelError(f"{where}: encoder width is not {WIDTH}")
        self.heads = int(arrays["num_heads"])
        w = dict(arrays)
        for name in ("conv1", "conv2"):  # (out, in, 3) -> (3 * in, out) for an im2col product
            k = w[f"{name}/weight"]
            w[f"{name}/weight"] = np.ascontiguousarray(k.transpose(2, 1, 0).reshape(-1, k.shape[0]))
        for key in list(w):  # x @ W.T with W (out, in): keep W.T contiguous
            if key.startswith("layer_") and key.endswith("/weight"):
                w[key] = np.ascontiguousarray(w[key].T)
        self._w = w
        self.max_frames = int(w["position_encodings/encodings"].shape[0])

    def _conv(self, x: np.ndarray, name: str, stride: int) -> np.ndarray:
        """x (T, C) -> (T', out): kernel 3, padding 1."""
        xp = np.pad(x, ((1, 1), (0, 0)))
        t = (xp.shape[0] - 3) // stride + 1
        cols = np.concatenate([xp[k: k + stride * (t - 1) + 1: stride] for k in range(3)], axis=1)
        return cols @ self._w[f"{name}/weight"] + self._w[f"{name}/bias"]

    def embed(self, mel: np.ndarray) -> np.ndarray:
        """The first layer's input (two GELU convolutions, then positions): (n // 2, 384) float32
        for a log-mel ``mel`` (80, n), n even, n // 2 <= 1500."""
        mel = np.asarray(mel, dtype=np.float32)
        if mel.ndim != 2 or mel.shape[0] != 80 or mel.shape[1] < 2 or mel.shape[1] // 2 > self.max_frames:
            raise ValueError(f"log-mel must be (80, 2..{2 * self.max_frames}), got {mel.shape}")
        x = _gelu(self._conv(mel.T, "conv1", 1))
        x = _gelu(self._conv(x, "conv2", 2))
        return x + self._w["position_encodings/encodings"][: len(x)]

    def __call__(self, mel: np.ndarray) -> list[np.ndarray]:
        """Outputs of layers 1..N (before the final layer norm) and the final output (after it),
        each (n // 2, 384) float32, for a log-mel ``mel`` as :meth:`embed` takes it."""
        w = self._w
        x = self.embed(mel)
        outs = []
        t, d = x.shape
        h, dh = self.heads, d // self.heads
        scale = np.float32(1.0 / np.sqrt(dh))
        for i in range(N_LAYERS):
            p = f"layer_{i}/"
            y = _layer_norm(x, w[p + "self_attention/layer_norm/gamma"], w[p + "self_attention/layer_norm/beta"])
            qkv = y @ w[p + "self_attention/linear_0/weight"] + w[p + "self_attention/linear_0/bias"]
            q, k, v = (a.reshape(t, h, dh).transpose(1, 0, 2) for a in np.split(qkv, 3, axis=-1))
            att = (q * scale) @ k.transpose(0, 2, 1)
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            o = (att @ v).transpose(1, 0, 2).reshape(t, d)
            x = x + o @ w[p + "self_attention/linear_1/weight"] + w[p + "self_attention/linear_1/bias"]
            y = _layer_norm(x, w[p + "ffn/layer_norm/gamma"], w[p + "ffn/layer_norm/beta"])
            y = _gelu(y @ w[p + "ffn/linear_0/weight"] + w[p + "ffn/linear_0/bias"])
            x = x + y @ w[p + "ffn/linear_1/weight"] + w[p + "ffn/linear_1/bias"]
            outs.append(x)
        outs.append(_layer_norm(x, w["layer_norm/gamma"], w["layer_norm/beta"]))
        return outs


_shared: dict[str, WhisperLayers] = {}
_lock = threading.Lock()


def shared_layers() -> WhisperLayers:
    """The process's one :class:`WhisperLayers` of the bundled tiny.en (SHA-256 checked), loaded once."""
    with _lock:
        if "tiny.en" not in _shared:
            folder = verify_weights(bundled_model_dir(), TINY_EN_SHA256)
            path = folder / "model.bin"
            _shared["tiny.en"] = WhisperLayers(read_encoder_arrays(path), where=str(path))
        return _shared["tiny.en"]
