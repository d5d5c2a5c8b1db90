"""Acoustic features from one STFT: frame-level matrices for the neural models, pooled
statistics for the classical ones.

Everything is computed from a single power spectrogram (no chroma-CQT, no pitch tracker), so
features for 3 s of audio take a few milliseconds. Functions are pure and deterministic:
the same samples and settings always give the same array.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from ser_model.errors import ParameterError, check_keys

#: Frame-feature groups, in the column order ``frame_features`` emits them.
FRAME_PARTS: tuple[str, ...] = ("logmel", "mfcc", "mfcc_delta", "spectral")
#: Names of the ``spectral`` group's columns (and their units).
SPECTRAL_NAMES: tuple[str, ...] = (
    "log_energy_db",  # 10*log10 of the frame's power, dB
    "zcr",  # zero-crossing rate, crossings per sample in [0, 1]
    "centroid_khz",  # spectral centroid, kHz
    "rolloff_khz",  # 85 % roll-off frequency, kHz
    "flatness",  # spectral flatness (geometric / arithmetic mean), in [0, 1]
)
UTTERANCE_NORMS: tuple[str, ...] = ("none", "mean", "meanvar")
_EPS = 1e-10


@dataclass(frozen=True)
class FeatureSettings:
    """How features are computed; saved in every bundle's ``config.json`` under ``features``."""

    sample_rate: int = 16000
    """Sample rate of the input samples, Hz (audio is resampled to this before features)."""
    n_fft: int = 512
    """FFT size in samples (512 = 32 ms at 16 kHz)."""
    win_length: int = 400
    """Analysis window (Hann) length in samples (400 = 25 ms at 16 kHz); <= n_fft."""
    hop_length: int = 256
    """Hop between frames in samples (256 = 16 ms at 16 kHz)."""
    n_mels: int = 64
    """Number of mel bands of the log-mel spectrogram."""
    fmin: float = 50.0
    """Lowest mel band edge, Hz."""
    fmax: float = 8000.0
    """Highest mel band edge, Hz (<= sample_rate / 2)."""
    n_mfcc: int = 20
    """Number of MFCCs (DCT-II of the log-mel spectrum, orthonormal), including c0."""
    delta_width: int = 9
    """Frames in the regression window of the MFCC deltas (odd, >= 3)."""
    top_db: float = 80.0
    """Log-mel floor: values more than this many dB below the utterance's maximum are clipped."""
    parts: tuple[str, ...] = ("logmel", "mfcc_delta", "spectral")
    """Which groups ``frame_features`` emits, a subset of FRAME_PARTS (kept in that order)."""
    utterance_norm: str = "mean"
    """Per-utterance normalisation of frame features: 'none', 'mean' (subtract each column's
    mean over the utterance) or 'meanvar' (also divide by its standard deviation)."""

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.n_fft <= 0 or self.hop_length <= 0:
            raise ParameterError("sample_rate, n_fft and hop_length must be positive")
        if not 0 < self.win_length <= self.n_fft:
            raise ParameterError(f"win_length must be in (0, n_fft={self.n_fft}], got {self.win_length}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ParameterError(f"need 0 <= fmin < fmax <= sample_rate/2, got {self.fmin}, {self.fmax}")
        if self.n_mels < 1 or not 1 <= self.n_mfcc <= self.n_mels:
            raise ParameterError(f"need n_mels >= 1 and 1 <= n_mfcc <= n_mels, got {self.n_mels}, {self.n_mfcc}")
        if self.delta_width < 3 or self.delta_width % 2 == 0:
            raise ParameterError(f"delta_width must be odd and >= 3, got {self.delta_width}")
        parts = tuple(self.parts)
        if not parts or any(p not in FRAME_PARTS for p in parts) or len(set(parts)) != len(parts):
            raise ParameterError(f"parts must be a non-empty subset of {FRAME_PARTS}, got {parts}")
        object.__setattr__(self, "parts", tuple(p for p in FRAME_PARTS if p in parts))
        if self.utterance_norm not in UTTERANCE_NORMS:
            raise ParameterError(f"utterance_norm must be one of {UTTERANCE_NORMS}, got {self.utterance_norm!r}")

    @property
    def n_frame_features(self) -> int:
        """Number of columns ``frame_features`` returns."""
        sizes = {"logmel": self.n_mels, "mfcc": self.n_mfcc, "mfcc_delta": self.n_mfcc,
                 "spectral": len(SPECTRAL_NAMES)}
        return sum(sizes[p] for p in self.parts)

    @property
    def n_pooled_features(self) -> int:
        """Length of the vector ``pooled_features`` returns."""
        per_frame = self.n_mels + 2 * self.n_mfcc + len(SPECTRAL_NAMES)
        return 4 * per_frame + 2 * 12

    def frames_for(self, seconds: float) -> int:
        """Number of frames ``frame_features`` gives for ``seconds`` of audio."""
        return 1 + int(round(seconds * self.sample_rate)) // self.hop_length

    def to_dict(self) -> dict:
        """A JSON-ready dict (``parts`` as a list)."""
        d = asdict(self)
        d["parts"] = list(self.parts)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSettings:
        """Inverse of ``to_dict``; unknown keys raise ParameterError, missing keys take defaults."""
        check_keys(d, cls, "feature settings")
        d = dict(d)
        if "parts" in d:
            d["parts"] = tuple(d["parts"])
        return cls(**d)


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    import librosa

    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return np.ascontiguousarray(basis.T, dtype=np.float32)  # (n_fft//2+1, n_mels); contiguous is ~100x faster


@lru_cache(maxsize=8)
def _dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """Orthonormal DCT-II, transposed: shape (n_mels, n_mfcc)."""
    n = np.arange(n_mels)
    k = np.arange(n_mfcc)[:, None]
    basis = np.cos(np.pi / n_mels * (n + 0.5) * k) * np.sqrt(2.0 / n_mels)
    basis[0] *= np.sqrt(0.5)
    return np.ascontiguousarray(basis.T, dtype=np.float32)


@lru_cache(maxsize=8)
def _window(win_length: int, n_fft: int) -> np.ndarray:
    w = np.hanning(win_length + 1)[:-1]  # periodic Hann
    pad = (n_fft - win_length) // 2
    return np.pad(w, (pad, n_fft - win_length - pad)).astype(np.float32)


def _check_samples(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ParameterError(f"samples must be 1-D (mono), got shape {y.shape}")
    if y.size == 0:
        raise ParameterError("samples are empty")
    y = y.astype(np.float32, copy=False)
    if not np.all(np.isfinite(y)):
        raise ParameterError("samples contain NaN or Inf")
    return y


def _frames(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred frames (zero-padded by n_fft // 2 at both ends, like librosa >= 0.10), shape (n_frames, n_fft)."""
    pad = n_fft // 2
    yp = np.pad(y, (pad, pad))
    n_frames = 1 + (yp.size - n_fft) // hop
    return np.lib.stride_tricks.sliding_window_view(yp, n_fft)[::hop][:n_frames]


def _power_spectrogram(y: np.ndarray, s: FeatureSettings) -> tuple[np.ndarray, np.ndarray]:
    """(frames (T, n_fft) unwindowed, power spectrum (T, n_fft//2+1))."""
    fr = _frames(y, s.n_fft, s.hop_length)
    spec = np.fft.rfft(fr * _window(s.win_length, s.n_fft), axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    return fr, power


def _delta(x: np.ndarray, width: int) -> np.ndarray:
    """Regression deltas along axis 0 (frames), edges repeated; same shape as x."""
    n = width // 2
    xp = np.pad(x, ((n, n), (0, 0)), mode="edge")
    t = x.shape[0]
    num = np.zeros_like(x)
    for k in range(1, n + 1):
        num += k * (xp[n + k : n + k + t] - xp[n - k : n - k + t])
    return num / (2 * sum(k * k for k in range(1, n + 1)))


def _all_frame_parts(y: np.ndarray, s: FeatureSettings) -> tuple[dict[str, np.ndarray], np.ndarray]:
    fr, power = _power_spectrogram(y, s)
    mel = power @ _mel_basis(s.sample_rate, s.n_fft, s.n_mels, s.fmin, s.fmax)
    logmel = 10.0 * np.log10(np.maximum(mel, _EPS))
    logmel = np.maximum(logmel, logmel.max() - s.top_db)
    mfcc = logmel @ _dct_matrix(s.n_mfcc, s.n_mels)
    freqs = np.linspace(0.0, s.sample_rate / 2, power.shape[1], dtype=np.float32)
    total = power.sum(axis=1) + _EPS
    log_energy = 10.0 * np.log10(total)
    signs = np.signbit(fr[:, : s.win_length])
    zcr = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)
    centroid = (power @ freqs) / total / 1000.0
    cum = np.cumsum(power, axis=1)
    rolloff = freqs[np.argmax(cum >= 0.85 * cum[:, -1:], axis=1)] / 1000.0
    flatness = np.exp(np.mean(np.log(power + _EPS), axis=1)) / (np.mean(power, axis=1) + _EPS)
    spectral = np.stack([log_energy, zcr, centroid, rolloff, flatness], axis=1)
    parts = {
        "logmel": logmel,
        "mfcc": mfcc,
        "mfcc_delta": None,
        "spectral": spectral,
    }
    parts["mfcc_delta"] = _delta(mfcc, s.delta_width)
    return {k: v.astype(np.float32) for k, v in parts.items()}, power


def frame_features(y: np.ndarray, *, settings: FeatureSettings) -> np.ndarray:
    """Frame-level features of mono samples at ``settings.sample_rate``.

    Returns float32 of shape ``(frames, settings.n_frame_features)`` with
    ``frames = 1 + len(y) // hop_length`` (centred frames). Columns, in FRAME_PARTS order for
    the groups in ``settings.parts``: log-mel power (dB, floored ``top_db`` below the
    utterance's maximum), MFCCs, MFCC deltas (per frame), and the spectral group
    (SPECTRAL_NAMES). Then ``settings.utterance_norm`` is applied per column over the utterance.
    Raises ParameterError for samples that are not a finite, non-empty 1-D array.
    """
    y = _check_samples(y)
    parts, _ = _all_frame_parts(y, settings)
    x = np.concatenate([parts[p] for p in settings.parts], axis=1)
    if settings.utterance_norm != "none":
        x = x - x.mean(axis=0, keepdims=True)
        if settings.utterance_norm == "meanvar":
            x = x / (x.std(axis=0, keepdims=True) + 1e-3)
    return np.ascontiguousarray(x, dtype=np.float32)


def pooled_features(y: np.ndarray, *, settings: FeatureSettings) -> np.ndarray:
    """Utterance-level statistics for the classical models, float32 of shape
    ``(settings.n_pooled_features,)``.

    For every frame feature of all groups (log-mel dB, MFCCs, MFCC deltas, spectral; before any
    per-utterance normalisation): mean, standard deviation, 10th and 90th percentile; then the
    mean and standard deviation of the 12 chroma bins (``librosa.feature.chroma_stft`` on the
    same power spectrogram, each frame max-normalised to 1).
    """
    import librosa

    y = _check_samples(y)
    parts, power = _all_frame_parts(y, settings)
    x = np.concatenate([parts[p] for p in FRAME_PARTS], axis=1)
    p10, p90 = np.percentile(x, [10, 90], axis=0)
    chroma = librosa.feature.chroma_stft(S=power.T, sr=settings.sample_rate, n_fft=settings.n_fft)
    out = np.concatenate([x.mean(0), x.std(0), p10, p90, chroma.mean(1), chroma.std(1)])
    return out.astype(np.float32)
