"""ser-v3 features: Whisper tiny.en encoder frames plus cheap prosody, pooled per utterance.

One utterance (prepared: mono, 16 kHz, trimmed, loudness-normalised, as ``audio.prepare``
gives it) becomes:

- ``encoder_frames``: (T, 384) float32, the Whisper encoder output (one row per 20 ms) of the
  utterance's own log-mel (faster-whisper's ``FeatureExtractor``), not padded to 30 s; or, for
  a bundle that names ``layers``, those encoder layers' outputs side by side (T, 384 * layers),
  from :mod:`ser_model.whisper_layers` (the same weights in NumPy: CTranslate2 gives the last
  output only);
- ``prosody_stats``: (N_PROSODY,) float32, statistics of an autocorrelation F0 contour, frame
  energy and spectral shape;
- ``utterance_vector``: encoder mean and std over time, then the prosody stats: (DIM,), or
  (:func:`vector_dim` (layers),).

The encoder is the same :func:`ser_model.whisper_model.shared_whisper` object the STT uses.
All functions are pure given the model: the same samples always give the same array.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ser_model.bundle import sha256_file
from ser_model.errors import ParameterError
from ser_model.outpaths import save_npz_atomic
from ser_model.whisper_model import TINY_EN_SHA256

SAMPLE_RATE = 16000
ENCODER_NAME = "whisper-tiny.en"
ENCODER_DIM = 384
LAST_ONLY: tuple[int, ...] = ()
"""``layers`` for the encoder's final output (CTranslate2, int8; ``ser-v3-final.toml``). The shipped
ser-v3 reads layers (1, 4) from ``ser_model.whisper_layers`` instead."""
N_LAYERS = 4
PROSODY_VERSION = "prosody-v1"
#: Longest input the encoder accepts: 30 s of log-mel frames (3000; 1500 encoder frames).
MAX_MEL_FRAMES = 3000

_F0_MIN, _F0_MAX = 60.0, 400.0
_FRAME, _HOP = 640, 160  # 40 ms analysis, 10 ms hop
_EPS = 1e-10

PROSODY_NAMES: tuple[str, ...] = (
    "f0_logmean", "f0_logstd", "f0_p10", "f0_p90", "f0_range", "f0_slope", "f0_dstd",
    "voiced_frac", "voicing_mean",
    "energy_mean", "energy_std", "energy_p10", "energy_p90", "energy_dstd", "energy_slope",
    "centroid_mean", "centroid_std", "rolloff_mean", "rolloff_std", "flatness_mean", "flatness_std",
    "zcr_mean", "zcr_std", "hf_ratio_mean", "hf_ratio_std", "duration_log", "pause_frac",
)
N_PROSODY = len(PROSODY_NAMES)
DIM = 2 * ENCODER_DIM + N_PROSODY


def check_layers(layers: Any) -> tuple[int, ...]:
    """``layers`` as a tuple: () (the final output) or distinct encoder layers 1..4 in order
    (1 = the first transformer layer's output, before the final layer norm); else ParameterError."""
    try:
        t = tuple(layers)
    except TypeError:
        t = None
    if t is None or any(not isinstance(i, int) or isinstance(i, bool) or not 1 <= i <= N_LAYERS for i in t) \
            or list(t) != sorted(set(t)):
        raise ParameterError(f"encoder layers must be distinct layer numbers 1..{N_LAYERS} in order, got {layers!r}")
    return t


def vector_dim(layers: tuple[int, ...] = LAST_ONLY) -> int:
    """Size of the utterance vector for these encoder ``layers``."""
    return 2 * ENCODER_DIM * max(1, len(check_layers(layers))) + N_PROSODY


def feature_id(encoder_sha256: str = TINY_EN_SHA256, layers: tuple[int, ...] = LAST_ONLY) -> str:
    """The string naming this feature extractor; a profile or bundle with another one is refused."""
    layers = check_layers(layers)
    named = f":layers={''.join(map(str, layers))}" if layers else ""
    return f"{ENCODER_NAME}:{encoder_sha256[:12]}{named}+{PROSODY_VERSION}:dim={vector_dim(layers)}"


def _check(y: Any) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0 or not np.isfinite(y).all():
        raise ParameterError("samples must be a finite, non-empty 1-D array")
    return y


def log_mel(model: Any, y: np.ndarray) -> np.ndarray:
    """The encoder's input for prepared samples ``y``: faster-whisper's log-mel (80, n) float32,
    cut to an even number of frames (the encoder's stride is 2), at most 30 s, at least 2."""
    y = _check(y)
    mel = model.feature_extractor(y)  # (80, frames)
    n = min(mel.shape[1] - mel.shape[1] % 2, MAX_MEL_FRAMES)
    if n < 2:
        mel = np.pad(mel, ((0, 0), (0, 2 - mel.shape[1])), mode="edge")
        n = 2
    return np.ascontiguousarray(mel[:, :n], dtype=np.float32)


def encoder_frames(model: Any, y: np.ndarray, layers: tuple[int, ...] = LAST_ONLY) -> np.ndarray:
    """Whisper encoder output of prepared 16 kHz samples ``y``: (T, 384) float32, T ~ len/320;
    with ``layers``, those layers' outputs side by side, (T, 384 * len(layers)).

    ``model`` is a ``faster_whisper.WhisperModel``. The log-mel comes from the model's own
    feature extractor, cut to an even number of frames (the encoder's stride is 2), at most 30 s.
    """
    import ctranslate2

    layers = check_layers(layers)
    mel = log_mel(model, y)
    if layers:
        from ser_model.whisper_layers import shared_layers

        outs = shared_layers()(mel)
        return np.concatenate([outs[i - 1] for i in layers], axis=1)
    out = model.model.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=False)
    return np.asarray(out, dtype=np.float32)[0]


def _frames(y: np.ndarray) -> np.ndarray:
    if y.size < _FRAME:
        y = np.pad(y, (0, _FRAME - y.size))
    n = 1 + (y.size - _FRAME) // _HOP
    return np.lib.stride_tricks.as_strided(y, (n, _FRAME), (y.strides[0] * _HOP, y.strides[0]))


def _slope(v: np.ndarray) -> float:
    if v.size < 2:
        return 0.0
    t = np.linspace(-1.0, 1.0, v.size)
    return float(np.dot(t, v - v.mean()) / np.dot(t, t))


@dataclass(frozen=True)
class FrameAnalysis:
    """Per 40 ms frame (10 ms hop) of prepared samples: what the prosody is read from."""

    frames: np.ndarray
    """(n, 640) float32 frames, each minus its mean."""
    power: np.ndarray
    """(n, 1025) power spectrum of the Hann-windowed frames (2048-point FFT)."""
    peak: np.ndarray
    """Normalised autocorrelation peak in 60-400 Hz (the voicing strength)."""
    f0_st: np.ndarray
    """F0 in semitone-like units, 12*log2(f/100) (meaningful where :attr:`voiced`)."""
    energy: np.ndarray
    """Frame energy in dB."""
    loud: np.ndarray
    """Within 35 dB of the loudest frame."""
    voiced: np.ndarray
    """Loud, with an autocorrelation peak >= 0.45."""


def frame_analysis(y: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> FrameAnalysis:
    """F0 from the normalised autocorrelation of 40 ms frames (10 ms hop) in 60-400 Hz, voiced
    where its peak is >= 0.45 and the frame is within 35 dB of the loudest; energy in dB."""
    y = _check(y)
    fr = _frames(y).astype(np.float32)
    fr = fr - fr.mean(axis=1, keepdims=True)
    win = np.hanning(_FRAME).astype(np.float32)
    nfft = 2048
    spec = np.fft.rfft(fr * win, n=nfft, axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float64)
    ac = np.fft.irfft(power, axis=1)[:, :_FRAME]
    ac0 = ac[:, :1] + _EPS
    # unbias by the window's own autocorrelation so long lags are not penalised
    wac = np.fft.irfft(np.abs(np.fft.rfft(win, n=nfft)) ** 2)[:_FRAME]
    r = (ac / ac0) / np.maximum(wac / wac[0], 1e-3)
    lo, hi = int(sample_rate / _F0_MAX), int(sample_rate / _F0_MIN)
    seg = r[:, lo:hi]
    lag = np.argmax(seg, axis=1)
    peak = seg[np.arange(len(seg)), lag]
    # parabolic refinement
    li = np.clip(lag, 1, seg.shape[1] - 2)
    a, b, c = seg[np.arange(len(seg)), li - 1], seg[np.arange(len(seg)), li], seg[np.arange(len(seg)), li + 1]
    denom = a - 2 * b + c
    off = np.where(np.abs(denom) > 1e-9, 0.5 * (a - c) / np.where(np.abs(denom) > 1e-9, denom, 1.0), 0.0)
    f0 = sample_rate / (lo + li + np.clip(off, -1, 1))
    energy = 10.0 * np.log10(ac[:, 0] / _FRAME + _EPS)
    loud = energy > energy.max() - 35.0
    return FrameAnalysis(frames=fr, power=power, peak=peak, f0_st=12.0 * np.log2(f0 / 100.0), energy=energy,
                         loud=loud, voiced=(peak >= 0.45) & loud)


def prosody_stats(y: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Prosody of prepared samples: (N_PROSODY,) float32 in PROSODY_NAMES order.

    Read from :func:`frame_analysis`: statistics of log-F0 over the voiced frames, of energy
    over the loud ones, and spectral centroid/roll-off (kHz), flatness, zero-crossing rate and
    high-frequency ratio.
    """
    y = _check(y)
    a = frame_analysis(y, sample_rate=sample_rate)
    fr, power, peak, energy, loud, voiced = a.frames, a.power, a.peak, a.energy, a.loud, a.voiced
    v = a.f0_st[voiced]
    if v.size >= 2:
        f0s = [v.mean(), v.std(), *np.percentile(v, [10, 90])]
        f0s.append(f0s[3] - f0s[2])
        f0s.append(_slope(v))
        f0s.append(float(np.diff(v).std()) if v.size > 2 else 0.0)
    else:
        f0s = [0.0] * 7
    freqs = np.linspace(0, sample_rate / 2, power.shape[1])
    total = power.sum(axis=1) + _EPS
    centroid = (power @ freqs) / total / 1000.0
    cum = np.cumsum(power, axis=1)
    rolloff = freqs[np.argmax(cum >= 0.85 * cum[:, -1:], axis=1)] / 1000.0
    flat = np.exp(np.mean(np.log(power + _EPS), axis=1)) / (power.mean(axis=1) + _EPS)
    signs = np.signbit(fr)
    zcr = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)
    hf = power[:, freqs >= 2000].sum(axis=1) / total
    e = energy[loud] if loud.any() else energy
    sel = loud if loud.sum() >= 2 else np.ones_like(loud)

    def ms(x: np.ndarray) -> list[float]:
        return [float(x[sel].mean()), float(x[sel].std())]

    out = [
        *f0s, float(voiced.mean()), float(peak[loud].mean()) if loud.any() else 0.0,
        float(e.mean()), float(e.std()), *np.percentile(e, [10, 90]).tolist(),
        float(np.diff(energy).std()) if energy.size > 1 else 0.0, _slope(energy),
        *ms(centroid), *ms(rolloff), *ms(flat), *ms(zcr), *ms(hf),
        float(np.log(y.size / sample_rate + 1e-3)), float(1.0 - loud.mean()),
    ]
    return np.nan_to_num(np.asarray(out, dtype=np.float32))


def pool(frames: np.ndarray, prosody: np.ndarray) -> np.ndarray:
    """The utterance vector (DIM,) float32: encoder mean, encoder std, prosody stats."""
    frames = np.asarray(frames, dtype=np.float32)
    return np.concatenate([frames.mean(0), frames.std(0), np.asarray(prosody, np.float32)]).astype(np.float32)


def utterance_vector(model: Any, y: np.ndarray, layers: tuple[int, ...] = LAST_ONLY) -> np.ndarray:
    """:func:`pool` of :func:`encoder_frames` and :func:`prosody_stats` of prepared samples."""
    return pool(encoder_frames(model, y, layers), prosody_stats(y))


def _cache_key(path: Path, speed: float = 1.0, channel: Any = None, layers: tuple[int, ...] = LAST_ONLY) -> str:
    """The file's name (a channel copy's noise is drawn from it) and the SHA-256 of its bytes,
    not its folder and mtime: a copied or touched dataset must not recompute every clip (a
    10-minute refill of a full training cache), a changed file must."""
    text = f"{path.name}|{sha256_file(path)}|{feature_id(layers=layers)}"
    if speed != 1.0:
        text += f"|speed={speed!r}"
    if channel is not None:
        text += f"|{channel.cache_tag()}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def clip_features(model: Any, path: str | Path, *, cache_dir: str | Path | None = None,
                  speed: float = 1.0, channel: Any = None,
                  layers: tuple[int, ...] = LAST_ONLY) -> tuple[np.ndarray, np.ndarray]:
    """(encoder frames as float16 (T, 384 or 384 * len(layers)), prosody (N_PROSODY,)) of an
    audio file, cached.

    ``speed`` != 1: of the prepared clip played that many times faster (``augment.speed``:
    tempo and pitch together), prepared again (a training copy).
    ``channel`` (a ``ser_model.channel.ChannelCopy``): of the prepared clip through that
    simulated device, prepared again (a training copy).
    The cache holds one ``.npz`` per clip (no pickle), keyed by file name, content (SHA-256), feature id
    (``layers`` included), speed and channel.
    """
    from ser_model.audio import load_audio

    path = Path(path)
    cached = None
    if cache_dir is not None:
        cached = Path(cache_dir) / f"{_cache_key(path, speed, channel, layers)}.npz"
        if cached.is_file():
            try:
                with np.load(cached, allow_pickle=False) as z:
                    return z["frames"], z["prosody"]
            except (OSError, ValueError, KeyError):
                pass
    y = load_audio(path, sample_rate=SAMPLE_RATE)
    if speed != 1.0:
        from ser_model.audio import prepare
        from ser_model.augment import speed as play_faster

        y = prepare(play_faster(y, rate=speed), sample_rate=SAMPLE_RATE)
    if channel is not None:
        from ser_model.audio import prepare

        y = prepare(channel(y, sample_rate=SAMPLE_RATE, clip=path), sample_rate=SAMPLE_RATE)
    frames = encoder_frames(model, y, layers).astype(np.float16)
    pros = prosody_stats(y)
    if cached is not None:
        save_npz_atomic(cached, frames=frames, prosody=pros)
    return frames, pros
