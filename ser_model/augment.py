"""Waveform and feature augmentation for training (label-preserving, deterministic given an rng).

Pure, keyword-only functions from arrays to arrays, in librosa's style. Waveforms are 1-D
float arrays (n,) nominally in [-1, 1]; every waveform function returns a new finite float32
array whose peak is at most 1 (a result that would exceed 1 is scaled down as a whole, never
clipped, unless ``gain(..., clip=True)`` asks for clipping). NaN/Inf in the input count as 0.
Bad parameters raise ``ser_model.errors.ParameterError``. Functions that draw random numbers
take a ``numpy.random.Generator`` and are deterministic given its state.

Lengths: every function keeps the length, except ``speed`` and ``time_stretch`` (output
length ``round(n / rate)``) and so ``Augmenter`` when it applies them.

Measured on 3 s of 16 kHz audio (one busy core): ``speed`` ~1 ms, ``pitch_shift`` and
``time_stretch`` ~9 ms (resampling + WSOLA, no phase vocoder), ``add_noise`` ~5 ms,
``reverb`` ~5 ms, ``band_limit`` ~2 ms; a default ``Augmenter`` ~10 ms per clip.

Public API::

    add_noise(y, *, snr_db, rng, color="white") -> y          # white | pink | brown
    speed(y, *, rate) -> y                                     # resampling: tempo and pitch
    time_stretch(y, *, rate, sample_rate=16000) -> y           # WSOLA: tempo only
    pitch_shift(y, *, sample_rate, n_steps) -> y               # resampling + WSOLA: pitch only
    time_shift(y, *, max_fraction, rng) -> y                   # zero-filled shift
    gain(y, *, db, clip=False) -> y
    reverb(y, *, sample_rate, rng, rt60, drr_db=3.0) -> y      # synthetic decaying-noise IR
    band_limit(y, *, sample_rate, low_hz, high_hz, order=4) -> y
    spec_augment(features, *, rng, n_freq_masks=2, max_freq=8, n_time_masks=2, max_time=20,
                 fill="mean") -> features                      # (frames, features)
    Augmenter(...)(y, *, sample_rate, rng) -> y                # random chain, frozen config
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ser_model.errors import ParameterError, check_keys

__all__ = [
    "NOISE_COLORS",
    "Augmenter",
    "add_noise",
    "band_limit",
    "gain",
    "pitch_shift",
    "reverb",
    "spec_augment",
    "speed",
    "time_shift",
    "time_stretch",
]

#: Noise colours ``add_noise`` knows, with their power-spectrum slope (power ~ 1 / f**slope).
NOISE_COLORS: dict[str, float] = {"white": 0.0, "pink": 1.0, "brown": 2.0}


# --------------------------------------------------------------------------- helpers


def _signal(y: object) -> np.ndarray:
    """Validate a 1-D waveform; return a finite float32 copy."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ParameterError(f"y must be a 1-D waveform, got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise ParameterError(f"y must be numeric, got dtype {arr.dtype}")
    out = arr.astype(np.float32, copy=True)
    bad = ~np.isfinite(out)
    if bad.any():
        out[bad] = 0.0
    return out


def _finish(y: np.ndarray) -> np.ndarray:
    """Finite float32 with peak <= 1 (scaled down as a whole if needed)."""
    out = np.asarray(y, dtype=np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        out = np.where(bad, np.float32(0.0), out)
    peak = float(np.abs(out).max()) if out.size else 0.0
    if peak > 1.0:
        out = out * np.float32(1.0 / peak)
    return np.ascontiguousarray(out, dtype=np.float32)


def _rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _positive(value: object, name: str) -> float:
    v = _finite(value, name)
    if v <= 0:
        raise ParameterError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def _tempo_rate(rate: object) -> float:
    """A speed/tempo factor in [0.5, 2]."""
    r = _positive(rate, "rate")
    if not 0.5 <= r <= 2.0:
        raise ParameterError(f"rate must be in [0.5, 2], got {rate}")
    return r


def _finite(value: object, name: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    return v


def _resample(y: np.ndarray, ratio: float) -> np.ndarray:
    """Resample by ``ratio`` = output length / input length (:func:`ser_model.audio.resample`,
    medium quality: augmentation, not recognition input)."""
    from ser_model.audio import resample

    if y.size == 0:
        return y.copy()
    return resample(y, 1_000_000.0, 1_000_000.0 * ratio, quality="MQ")


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    if y.size >= n:
        return y[:n]
    return np.concatenate([y, np.zeros(n - y.size, dtype=y.dtype)])


# --------------------------------------------------------------------------- noise


def _colored_noise(n: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) float64 zero-mean noise with power spectrum ~ 1/f**slope and unit power."""
    white = rng.standard_normal(n)
    if slope == 0.0 or n < 4:
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        k = np.arange(spectrum.size, dtype=np.float64)
        k_min = max(1.0, n / 1000.0)  # flat below ~0.05 % of the sample rate (no DC drift)
        spectrum *= np.maximum(k, k_min) ** (-slope / 2.0)
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n)
    noise -= noise.mean()
    power = float(np.mean(noise * noise))
    return noise / math.sqrt(power) if power > 0 else noise


def add_noise(
    y: np.ndarray, *, snr_db: float, rng: np.random.Generator, color: str = "white"
) -> np.ndarray:
    """Add white, pink or brown Gaussian noise at a given signal-to-noise ratio.

    The SNR is ``10 * log10(mean(y**2) / mean(noise**2))`` over the whole clip, achieved exactly
    (to float32 precision); if ``y + noise`` would peak above 1, both are scaled down together,
    so the SNR is unchanged. A silent ``y`` (all zeros) is returned unchanged: no SNR is defined.

    Args:
        y: (n,) waveform.
        snr_db: target SNR in dB (finite; may be negative).
        rng: random generator.
        color: "white" (flat), "pink" (-3 dB/octave) or "brown" (-6 dB/octave).

    Returns:
        (n,) float32.
    """
    x = _signal(y)
    snr = _finite(snr_db, "snr_db")
    gen = _rng(rng)
    if color not in NOISE_COLORS:
        raise ParameterError(f"color must be one of {sorted(NOISE_COLORS)}, got {color!r}")
    power = float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0
    if power == 0.0:
        return _finish(x)
    noise = _colored_noise(x.size, NOISE_COLORS[color], gen)
    noise *= math.sqrt(power / 10.0 ** (snr / 10.0))
    return _finish(x.astype(np.float64) + noise)


# --------------------------------------------------------------------------- tempo and pitch


def speed(y: np.ndarray, *, rate: float) -> np.ndarray:
    """Speed perturbation (Kaldi style): play ``rate`` times faster, changing tempo and pitch.

    Resampling-based (soxr), so fast. Pitch moves by ``12 * log2(rate)`` semitones.

    Args:
        y: (n,) waveform.
        rate: speed factor in [0.5, 2]; > 1 is faster and higher.

    Returns:
        (round(n / rate),) float32.
    """
    x = _signal(y)
    r = _tempo_rate(rate)
    if r == 1.0:
        return _finish(x)
    return _finish(_fit_length(_resample(x, 1.0 / r), int(round(x.size / r))))


def _wsola(x: np.ndarray, rate: float, sample_rate: float) -> np.ndarray:
    """Waveform-similarity overlap-add time-scale modification.

    32 ms Hann frames at 50 % overlap; each analysis frame is moved by up to +-8 ms to best
    continue the previous one (cross-correlation by a matrix-vector product).
    Output length round(n / rate).
    """
    n_out = int(round(x.size / rate))
    if x.size == 0 or n_out == 0:
        return np.zeros(n_out, dtype=np.float32)
    frame = max(16, 2 * int(round(0.016 * sample_rate)))
    hop = frame // 2
    # half a frame of lead-in, dropped at the end, so the first samples are not faded in
    x = np.concatenate([np.zeros(hop, np.float32), x])
    n = x.size
    n_out += hop
    tol = hop // 2
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(frame) / frame)).astype(np.float32)
    n_frames = n_out // hop + 2
    ana_hop = hop * rate
    pad_end = int(math.ceil(n_frames * ana_hop)) + frame + 2 * tol + hop - n
    xp = np.concatenate(
        [np.zeros(tol, np.float32), x, np.zeros(max(pad_end, 0) + tol, np.float32)]
    )
    energy = np.concatenate([[0.0], np.cumsum(xp.astype(np.float64) ** 2)])
    out = np.zeros(n_frames * hop + frame, dtype=np.float32)
    pos = tol  # position in xp of the frame taken for output frame 0
    for k in range(n_frames):
        if k > 0:
            natural = pos + hop  # what would follow the previous frame in the input
            start = int(round(k * ana_hop))  # xp index of (nominal position - tol)
            scores = np.correlate(
                xp[start : start + 2 * tol + frame], xp[natural : natural + frame], "valid"
            )
            # normalised by each candidate's energy, or loud frames would always win
            norms = energy[start + frame : start + frame + 2 * tol + 1] - energy[
                start : start + 2 * tol + 1
            ]
            pos = start + int(np.argmax(scores / np.sqrt(np.maximum(norms, 1e-12))))
        out[k * hop : k * hop + frame] += window * xp[pos : pos + frame]
    return out[hop:n_out]


def time_stretch(y: np.ndarray, *, rate: float, sample_rate: float = 16000) -> np.ndarray:
    """Change tempo without changing pitch (WSOLA; much faster than a phase vocoder).

    Args:
        y: (n,) waveform.
        rate: tempo factor in [0.5, 2]; > 1 is faster (shorter).
        sample_rate: Hz (sets the 32 ms frame length).

    Returns:
        (round(n / rate),) float32.
    """
    x = _signal(y)
    r = _tempo_rate(rate)
    sr = _positive(sample_rate, "sample_rate")
    if r == 1.0:
        return _finish(x)
    return _finish(_wsola(x, r, sr))


def pitch_shift(y: np.ndarray, *, sample_rate: float, n_steps: float) -> np.ndarray:
    """Shift pitch by ``n_steps`` semitones, keeping duration (resample, then WSOLA back).

    Formants move with the pitch (as in librosa's pitch_shift).

    Args:
        y: (n,) waveform.
        sample_rate: Hz.
        n_steps: semitones in [-12, 12]; positive is higher.

    Returns:
        (n,) float32.
    """
    x = _signal(y)
    sr = _positive(sample_rate, "sample_rate")
    steps = _finite(n_steps, "n_steps")
    if abs(steps) > 12:
        raise ParameterError(f"n_steps must be in [-12, 12], got {n_steps}")
    if steps == 0 or x.size == 0:
        return _finish(x)
    factor = 2.0 ** (steps / 12.0)
    faster = _resample(x, 1.0 / factor)  # played at sr: pitch * factor, duration / factor
    restored = _wsola(faster, faster.size / x.size, sr)
    return _finish(_fit_length(restored, x.size))


# --------------------------------------------------------------------------- level and time


def time_shift(y: np.ndarray, *, max_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Shift the clip left or right by up to ``max_fraction`` of its length, filling with zeros.

    Not circular: what moves past one end is dropped, the other end gets silence.

    Args:
        y: (n,) waveform.
        max_fraction: largest shift as a fraction of n, in [0, 0.5].
        rng: random generator; the shift is uniform in [-max, +max] samples.

    Returns:
        (n,) float32.
    """
    x = _signal(y)
    frac = _finite(max_fraction, "max_fraction")
    if not 0.0 <= frac <= 0.5:
        raise ParameterError(f"max_fraction must be in [0, 0.5], got {max_fraction}")
    limit = int(frac * x.size)
    shift = int(_rng(rng).integers(-limit, limit + 1))
    out = np.zeros_like(x)
    if shift > 0:
        out[shift:] = x[:-shift]
    elif shift < 0:
        out[:shift] = x[-shift:]
    else:
        out[:] = x
    return _finish(out)


def gain(y: np.ndarray, *, db: float, clip: bool = False) -> np.ndarray:
    """Change the level by ``db`` decibels.

    Args:
        y: (n,) waveform.
        db: gain in dB, in [-60, 60].
        clip: if True, samples beyond +-1 are hard-clipped (an overloaded microphone);
            if False (default) the whole result is scaled down so its peak is 1.

    Returns:
        (n,) float32.
    """
    x = _signal(y)
    g = _finite(db, "db")
    if abs(g) > 60:
        raise ParameterError(f"db must be in [-60, 60], got {db}")
    out = x * np.float32(10.0 ** (g / 20.0))
    if clip:
        np.clip(out, -1.0, 1.0, out=out)
    return _finish(out)


# --------------------------------------------------------------------------- room and channel


def reverb(
    y: np.ndarray,
    *,
    sample_rate: float,
    rng: np.random.Generator,
    rt60: float,
    drr_db: float = 3.0,
) -> np.ndarray:
    """Convolve with a synthetic room impulse response: a direct path plus exponentially
    decaying Gaussian noise (60 dB down after ``rt60`` seconds).

    The result keeps the input's length (the reverberant tail past the end is cut) and its RMS.

    Args:
        y: (n,) waveform.
        sample_rate: Hz.
        rng: random generator (draws the noise of the impulse response).
        rt60: reverberation time in seconds, in (0, 3].
        drr_db: direct-to-reverberant energy ratio in dB (higher: drier), in [-20, 40].

    Returns:
        (n,) float32.
    """
    x = _signal(y)
    sr = _positive(sample_rate, "sample_rate")
    t60 = _positive(rt60, "rt60")
    if t60 > 3.0:
        raise ParameterError(f"rt60 must be in (0, 3] seconds, got {rt60}")
    drr = _finite(drr_db, "drr_db")
    if not -20.0 <= drr <= 40.0:
        raise ParameterError(f"drr_db must be in [-20, 40], got {drr_db}")
    gen = _rng(rng)
    length = max(2, int(t60 * sr))
    t = np.arange(length) / sr
    tail = gen.standard_normal(length) * np.exp(-6.907755 * t / t60)  # ln(1000) = 60 dB
    tail[0] = 0.0
    tail *= math.sqrt(10.0 ** (-drr / 10.0) / float(np.sum(tail * tail)))
    ir = tail
    ir[0] = 1.0
    if x.size == 0:
        return _finish(x)
    from scipy.signal import oaconvolve

    wet = oaconvolve(x.astype(np.float64), ir)[: x.size]
    rms_in = math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))
    rms_out = math.sqrt(float(np.mean(wet * wet)))
    if rms_out > 0:
        wet *= rms_in / rms_out
    return _finish(wet)


def band_limit(
    y: np.ndarray,
    *,
    sample_rate: float,
    low_hz: float,
    high_hz: float,
    order: int = 4,
) -> np.ndarray:
    """Band-pass with a Butterworth filter: telephone (300-3400 Hz) or laptop-mic colour.

    Args:
        y: (n,) waveform.
        sample_rate: Hz.
        low_hz: lower edge in Hz; 0 for a low-pass only.
        high_hz: upper edge in Hz; >= sample_rate / 2 for a high-pass only.
        order: filter order (1..10) of each edge.

    Returns:
        (n,) float32 (causal filter: a few ms of group delay, as a real channel has).
    """
    x = _signal(y)
    sr = _positive(sample_rate, "sample_rate")
    low = _finite(low_hz, "low_hz")
    high = _finite(high_hz, "high_hz")
    nyquist = sr / 2.0
    if low < 0 or high <= low:
        raise ParameterError(f"need 0 <= low_hz < high_hz, got {low_hz}, {high_hz}")
    if not isinstance(order, int) or not 1 <= order <= 10:
        raise ParameterError(f"order must be an int in [1, 10], got {order!r}")
    if low >= nyquist:
        raise ParameterError(f"low_hz {low_hz} must be below Nyquist ({nyquist} Hz)")
    from scipy.signal import butter, sosfilt

    if low <= 0 and high >= nyquist:
        return _finish(x)
    if low <= 0:
        sos = butter(order, high, btype="lowpass", fs=sr, output="sos")
    elif high >= nyquist:
        sos = butter(order, low, btype="highpass", fs=sr, output="sos")
    else:
        sos = butter(order, [low, high], btype="bandpass", fs=sr, output="sos")
    return _finish(sosfilt(sos, x))


# --------------------------------------------------------------------------- features


def spec_augment(
    features: np.ndarray,
    *,
    rng: np.random.Generator,
    n_freq_masks: int = 2,
    max_freq: int = 8,
    n_time_masks: int = 2,
    max_time: int = 20,
    fill: str | float = "mean",
) -> np.ndarray:
    """SpecAugment-style masking of a feature matrix (no time warping).

    Each mask has a width drawn uniformly from [0, max] and a uniform start; masks may overlap.

    Args:
        features: (frames, n_features) matrix (e.g. log-mel or MFCC frames).
        rng: random generator.
        n_freq_masks: number of feature-band masks (columns), >= 0.
        max_freq: widest feature mask in columns, >= 0 (capped at n_features).
        n_time_masks: number of time masks (rows), >= 0.
        max_time: widest time mask in frames, >= 0 (capped at frames).
        fill: "mean" (each masked column gets its own mean over time, so it becomes 0 after
            per-column standardisation) or a number.

    Returns:
        (frames, n_features) float32 copy.
    """
    x = np.asarray(features)
    if x.ndim != 2:
        raise ParameterError(f"features must be (frames, n_features), got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise ParameterError(f"features must be numeric, got dtype {x.dtype}")
    for name, value in (
        ("n_freq_masks", n_freq_masks),
        ("max_freq", max_freq),
        ("n_time_masks", n_time_masks),
        ("max_time", max_time),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ParameterError(f"{name} must be an int >= 0, got {value!r}")
    gen = _rng(rng)
    out = x.astype(np.float32, copy=True)
    bad = ~np.isfinite(out)
    if bad.any():
        out[bad] = 0.0
    frames, n_feat = out.shape
    if fill == "mean":
        col_fill = out.mean(axis=0) if frames else np.zeros(n_feat, np.float32)
    elif isinstance(fill, (int, float)) and not isinstance(fill, bool) and math.isfinite(fill):
        col_fill = np.full(n_feat, fill, dtype=np.float32)
    else:
        raise ParameterError(f"fill must be 'mean' or a finite number, got {fill!r}")
    for _ in range(int(n_freq_masks)):
        width = int(gen.integers(0, min(int(max_freq), n_feat) + 1))
        start = int(gen.integers(0, n_feat - width + 1))
        out[:, start : start + width] = col_fill[start : start + width]
    for _ in range(int(n_time_masks)):
        width = int(gen.integers(0, min(int(max_time), frames) + 1))
        start = int(gen.integers(0, frames - width + 1))
        out[start : start + width, :] = col_fill
    return out


# --------------------------------------------------------------------------- random chain


def _range(value: Any, name: str, lo: float, hi: float) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
    ):
        raise ParameterError(f"{name} must be a (low, high) pair of numbers, got {value!r}")
    if not lo <= value[0] <= value[1] <= hi:
        raise ParameterError(f"{name} must satisfy {lo} <= low <= high <= {hi}, got {value!r}")


@dataclass(frozen=True)
class Augmenter:
    """A random chain of waveform augmentations; ``Augmenter()(y, sample_rate=, rng=)``.

    Order: speed, pitch, stretch, reverb, band limit, noise, gain, shift. Each step is applied
    with its probability; parameters are drawn uniformly from their ranges. Saved in training
    configs through ``to_dict`` / ``from_dict`` (TOML/JSON-friendly).
    """

    p_speed: float = 0.5
    """Probability of speed perturbation (changes length by 1/rate)."""
    speed_range: tuple[float, float] = (0.9, 1.1)
    """Speed factors (0.5..2)."""
    p_pitch: float = 0.3
    """Probability of a pitch shift (length kept)."""
    pitch_range: tuple[float, float] = (-2.0, 2.0)
    """Pitch shift in semitones (-12..12)."""
    p_stretch: float = 0.0
    """Probability of a tempo change without pitch change (changes length by 1/rate)."""
    stretch_range: tuple[float, float] = (0.9, 1.1)
    """Tempo factors (0.5..2)."""
    p_reverb: float = 0.2
    """Probability of synthetic room reverberation."""
    rt60_range: tuple[float, float] = (0.15, 0.6)
    """Reverberation time in seconds (0..3)."""
    drr_db_range: tuple[float, float] = (0.0, 10.0)
    """Direct-to-reverberant ratio in dB (-20..40)."""
    p_band_limit: float = 0.15
    """Probability of a band-pass channel (telephone / cheap microphone)."""
    low_hz_range: tuple[float, float] = (100.0, 400.0)
    """Lower band edge in Hz."""
    high_hz_range: tuple[float, float] = (3000.0, 7000.0)
    """Upper band edge in Hz (capped below Nyquist)."""
    p_noise: float = 0.5
    """Probability of additive noise."""
    snr_db_range: tuple[float, float] = (10.0, 30.0)
    """Signal-to-noise ratio in dB."""
    noise_colors: tuple[str, ...] = ("white", "pink", "brown")
    """Noise colours to pick from uniformly."""
    p_gain: float = 0.3
    """Probability of a level change."""
    gain_db_range: tuple[float, float] = (-6.0, 6.0)
    """Gain in dB (-60..60); the result is never clipped."""
    p_shift: float = 0.3
    """Probability of a zero-filled time shift."""
    max_shift_fraction: float = 0.1
    """Largest shift as a fraction of the length (0..0.5)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("p_") and (not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0):
                raise ParameterError(f"{f.name} must be a probability in [0, 1], got {value!r}")
        _range(self.speed_range, "speed_range", 0.5, 2.0)
        _range(self.stretch_range, "stretch_range", 0.5, 2.0)
        _range(self.pitch_range, "pitch_range", -12.0, 12.0)
        _range(self.rt60_range, "rt60_range", 1e-3, 3.0)
        _range(self.drr_db_range, "drr_db_range", -20.0, 40.0)
        _range(self.low_hz_range, "low_hz_range", 0.0, 1e6)
        _range(self.high_hz_range, "high_hz_range", 0.0, 1e6)
        if self.high_hz_range[0] <= self.low_hz_range[1]:
            raise ParameterError("high_hz_range must lie above low_hz_range")
        _range(self.snr_db_range, "snr_db_range", -30.0, 120.0)
        _range(self.gain_db_range, "gain_db_range", -60.0, 60.0)
        if (
            not isinstance(self.noise_colors, tuple)
            or not self.noise_colors
            or any(c not in NOISE_COLORS for c in self.noise_colors)
        ):
            raise ParameterError(
                f"noise_colors must be a non-empty tuple of {sorted(NOISE_COLORS)}, "
                f"got {self.noise_colors!r}"
            )
        frac = self.max_shift_fraction
        if not isinstance(frac, (int, float)) or not 0.0 <= frac <= 0.5:
            raise ParameterError(f"max_shift_fraction must be in [0, 0.5], got {frac!r}")

    @classmethod
    def off(cls) -> Augmenter:
        """An augmenter that changes nothing (every probability 0)."""
        return cls(**{f.name: 0.0 for f in fields(cls) if f.name.startswith("p_")})

    @property
    def enabled(self) -> bool:
        """Whether any step can fire."""
        return any(getattr(self, f.name) > 0 for f in fields(self) if f.name.startswith("p_"))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists), for TOML/JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Augmenter:
        """Build from a dict such as a TOML table; missing keys take defaults.

        Raises:
            ParameterError: an unknown key or an invalid value.
        """
        if not isinstance(d, dict):
            raise ParameterError(f"expected a dict, got {type(d).__name__}")
        check_keys(d, cls, "augmentation setting(s)")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def __call__(
        self, y: np.ndarray, *, sample_rate: float, rng: np.random.Generator
    ) -> np.ndarray:
        """Apply a random chain to one waveform.

        Args:
            y: (n,) waveform at ``sample_rate``.
            sample_rate: Hz.
            rng: random generator; same state in, same output out.

        Returns:
            (m,) float32, peak <= 1; m == n unless speed or stretch fired (m ~ n / rate).
        """
        gen = _rng(rng)
        sr = _positive(sample_rate, "sample_rate")
        x = _signal(y)
        draw = gen.uniform  # one name, so the order of draws reads clearly

        if gen.random() < self.p_speed:
            x = speed(x, rate=draw(*self.speed_range))
        if gen.random() < self.p_pitch:
            x = pitch_shift(x, sample_rate=sr, n_steps=draw(*self.pitch_range))
        if gen.random() < self.p_stretch:
            x = time_stretch(x, rate=draw(*self.stretch_range), sample_rate=sr)
        if gen.random() < self.p_reverb:
            x = reverb(
                x,
                sample_rate=sr,
                rng=gen,
                rt60=draw(*self.rt60_range),
                drr_db=draw(*self.drr_db_range),
            )
        if gen.random() < self.p_band_limit:
            low = draw(*self.low_hz_range)
            high = min(draw(*self.high_hz_range), 0.45 * sr)
            if high > low:
                x = band_limit(x, sample_rate=sr, low_hz=low, high_hz=high)
        if gen.random() < self.p_noise:
            color = self.noise_colors[int(gen.integers(len(self.noise_colors)))]
            x = add_noise(x, snr_db=draw(*self.snr_db_range), rng=gen, color=color)
        if gen.random() < self.p_gain:
            x = gain(x, db=draw(*self.gain_db_range))
        if gen.random() < self.p_shift:
            x = time_shift(x, max_fraction=self.max_shift_fraction, rng=gen)
        return _finish(x)
