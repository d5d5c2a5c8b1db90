"""Audio loading and conditioning: one loader for every real format, one ``prepare`` for arrays.

Public API (see docs/CONTRACTS.md)::

    TARGET_RATE = 16000
    load_audio(path, *, sample_rate=16000, trim=True, normalize=True) -> np.ndarray  # (n,) float32
    prepare(samples, *, sample_rate, target_rate=16000, trim=True, normalize=True) -> np.ndarray
    is_silent(samples, *, sample_rate) -> bool

Processing chain of ``prepare`` (``load_audio`` reads the file, mixes to mono, then calls it):

1. integer PCM arrays are scaled to [-1, 1); NaN and +-Inf samples become 0;
2. the DC offset (mean) is removed;
3. leading and trailing silence is trimmed: 10 ms blocks whose 30 ms RMS is more than
   ``TRIM_TOP_DB`` below the loudest block are cut at both ends (a 20 ms margin is kept);
   a clip with no sound at all is left as it is (never emptied);
4. the rate is converted to ``target_rate`` with soxr (high quality);
5. loudness is normalised: the RMS of the voiced blocks is set to ``TARGET_DBFS``, with the gain
   capped so the peak stays at or below ``PEAK_LIMIT``. Silent input (``is_silent``) is not
   amplified, so ``is_silent`` gives the same answer before and after ``prepare``.

Everything is numpy framing (no STFT), so ``prepare`` on 3 s of 16 kHz audio costs well under
a millisecond; it is on the recogniser's hot path.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

from ser_model.errors import AudioLoadError, ParameterError

__all__ = [
    "MIN_SECONDS",
    "PEAK_LIMIT",
    "SILENCE_DBFS",
    "TARGET_DBFS",
    "TARGET_RATE",
    "TRIM_TOP_DB",
    "is_silent",
    "load_audio",
    "prepare",
]

#: Sample rate (Hz) every model in the project works at.
TARGET_RATE = 16000
#: Trim threshold (dB below the loudest 30 ms block).
TRIM_TOP_DB = 40.0
#: Loudness target (dBFS) for the RMS of the voiced part.
TARGET_DBFS = -20.0
#: Largest absolute sample value after normalisation (about -0.9 dBFS).
PEAK_LIMIT = 0.9
#: A clip whose loudest 30 ms block has an RMS below this level (dBFS) is silent.
SILENCE_DBFS = -55.0
#: A clip shorter than this (seconds) is too short to hold speech: ``is_silent`` is True.
MIN_SECONDS = 0.1

_BLOCK_SECONDS = 0.010  # analysis block for trimming / loudness (10 ms)
_SMOOTH_BLOCKS = 3  # RMS is taken over 3 blocks (30 ms)
_MARGIN_BLOCKS = 2  # blocks kept before the first / after the last voiced block
_EPS = 1e-12


# --------------------------------------------------------------------------- block energy


def block_power(y: np.ndarray, sample_rate: float) -> tuple[np.ndarray, int]:
    """Mean-square power of ~30 ms windows hopped every 10 ms.

    Args:
        y: (n,) float32 mono samples.
        sample_rate: Hz.

    Returns:
        (power, block): power is (n_blocks,) float64, one value per 10 ms block (the mean of the
        block and its two neighbours); ``block`` is the block length in samples.
    """
    block = max(1, int(round(sample_rate * _BLOCK_SECONDS)))
    n_blocks = -(-y.size // block)
    padded = y
    if n_blocks * block != y.size:
        padded = np.zeros(n_blocks * block, dtype=y.dtype)
        padded[: y.size] = y
    frames = padded.reshape(n_blocks, block)
    power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / block
    if n_blocks * block != y.size:  # the last block is partly padding
        tail = y.size - (n_blocks - 1) * block
        power[-1] *= block / tail
    if n_blocks >= _SMOOTH_BLOCKS:
        kernel = np.ones(_SMOOTH_BLOCKS) / _SMOOTH_BLOCKS
        power = np.convolve(power, kernel, mode="same")
    return power, block


def _as_float_mono(samples: object) -> np.ndarray:
    """Validate a 1-D array, scale integer PCM to [-1, 1), return a finite float32 copy."""
    y = np.asarray(samples)
    if y.ndim != 1:
        raise ParameterError(f"samples must be a 1-D array, got shape {y.shape}")
    if y.dtype.kind in "iu":
        info = np.iinfo(y.dtype)
        scale = float(info.max) + 1.0
        offset = 0.0 if y.dtype.kind == "i" else scale / 2.0
        y = ((y.astype(np.float64) - offset) / (scale - offset)).astype(np.float32)
    elif y.dtype.kind == "f" or y.dtype.kind == "b":
        y = y.astype(np.float32, copy=True)
    else:
        raise ParameterError(f"samples must be numeric, got dtype {y.dtype}")
    finite = np.isfinite(y)
    if not finite.all():
        y[~finite] = 0.0
    return y


def _check_rate(sample_rate: object, name: str = "sample_rate") -> float:
    try:
        rate = float(sample_rate)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a positive number, got {sample_rate!r}") from None
    if not np.isfinite(rate) or rate <= 0:
        raise ParameterError(f"{name} must be a positive number, got {sample_rate!r}")
    return rate


def _loudest_dbfs(power: np.ndarray) -> float:
    return 10.0 * float(np.log10(max(float(power.max()), _EPS))) if power.size else -np.inf


# --------------------------------------------------------------------------- public API


def is_silent(samples: np.ndarray, *, sample_rate: float) -> bool:
    """Whether a clip holds no usable sound.

    True for an empty or too-short clip (fewer than ``MIN_SECONDS``), digital silence, or
    near-silence: the RMS of its loudest 30 ms window (after removing DC) is below
    ``SILENCE_DBFS`` dBFS. Works on raw input and on the output of ``prepare`` alike
    (``prepare`` never amplifies a silent clip). NaN/Inf samples count as 0.

    Args:
        samples: (n,) mono samples, float in [-1, 1] or integer PCM.
        sample_rate: Hz.

    Returns:
        bool.
    """
    rate = _check_rate(sample_rate)
    y = _as_float_mono(samples)
    if y.size < max(1, int(MIN_SECONDS * rate)):
        return True
    y -= y.mean(dtype=np.float64)
    power, _ = block_power(y, rate)
    return _loudest_dbfs(power) < SILENCE_DBFS


def prepare(
    samples: np.ndarray,
    *,
    sample_rate: float,
    target_rate: int = TARGET_RATE,
    trim: bool = True,
    normalize: bool = True,
    top_db: float = TRIM_TOP_DB,
    target_dbfs: float = TARGET_DBFS,
) -> np.ndarray:
    """Condition an in-memory clip exactly as ``load_audio`` conditions a file.

    Args:
        samples: (n,) mono samples at ``sample_rate``; float (nominally [-1, 1]) or integer PCM
            (scaled by the dtype's range). NaN/Inf samples are replaced by 0.
        sample_rate: rate of ``samples`` in Hz.
        target_rate: output rate in Hz (soxr resampling when different).
        trim: cut leading/trailing silence (``top_db`` dB below the loudest 30 ms window).
        normalize: set the voiced RMS to ``target_dbfs`` dBFS, peak capped at ``PEAK_LIMIT``.
            Skipped for silent input.
        top_db: trim threshold in dB (positive).
        target_dbfs: loudness target in dBFS (negative).

    Returns:
        (m,) float32 at ``target_rate``, finite, peak <= ``PEAK_LIMIT`` when normalised.
        An empty input gives an empty output; check ``is_silent`` before using the result.

    Raises:
        ParameterError: samples not 1-D / not numeric, or a non-positive rate.
    """
    rate = _check_rate(sample_rate)
    out_rate = _check_rate(target_rate, "target_rate")
    if top_db <= 0:
        raise ParameterError(f"top_db must be > 0, got {top_db}")
    y = _as_float_mono(samples)
    if y.size == 0:
        return y
    y -= np.float32(y.mean(dtype=np.float64))

    power, block = block_power(y, rate)
    loudest = float(power.max())
    silent = y.size < max(1, int(MIN_SECONDS * rate)) or _loudest_dbfs(power) < SILENCE_DBFS
    voiced = power > loudest * 10.0 ** (-top_db / 10.0) if loudest > 0 else None

    if trim and voiced is not None and voiced.any():
        idx = np.flatnonzero(voiced)
        first = max(0, int(idx[0]) - _MARGIN_BLOCKS)
        last = min(power.size, int(idx[-1]) + 1 + _MARGIN_BLOCKS)
        y = y[first * block : min(y.size, last * block)]
        voiced = voiced[first:last]
        power = power[first:last]

    if normalize and not silent and voiced is not None and voiced.any():
        rms = float(np.sqrt(power[voiced].mean()))
        gain = 10.0 ** (target_dbfs / 20.0) / max(rms, _EPS)
        peak = float(np.abs(y).max())
        if peak * gain > PEAK_LIMIT:
            gain = PEAK_LIMIT / peak
        y *= np.float32(gain)

    if out_rate != rate:
        y = resample(y, rate, out_rate, quality="HQ")
        if normalize and not silent:  # resampling can overshoot by a hair
            peak = float(np.abs(y).max()) if y.size else 0.0
            if peak > PEAK_LIMIT:
                y *= np.float32(PEAK_LIMIT / peak)
    return np.ascontiguousarray(y, dtype=np.float32)


#: soxr qualities :func:`resample` accepts, from the quickest (shortest filter) to the best.
RESAMPLE_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")


def resample(samples: np.ndarray, rate: float, target: float, *, quality: str = "HQ") -> np.ndarray:
    """``samples`` (mono) from ``rate`` to ``target`` Hz as float32, with soxr (band-limited, so
    nothing above the new Nyquist folds back into the band, unlike linear interpolation).

    The one resampler of the project. ``quality`` is a soxr quality, chosen per use: "HQ"
    where the audio is transcribed or turned into emotion features (files, speech-to-text
    input); "MQ" for a whole utterance only asked whether it holds speech
    (``assistant.vad.has_speech``: the VAD needs the speech band, not a flat passband); "QQ"
    for 32 ms microphone frames the VAD scores one at a time: each frame is resampled alone,
    so a long filter rings at every frame edge (MQ: -37 dB below the speech, measured on a
    RAVDESS clip at 48 kHz), while QQ's cubic interpolation has no ramp, costs 33 us a frame
    and gives the VAD what the linear interpolation it was tuned with gave (within 4e-6 rms);
    QQ is not band-limited, so keep it to such blocks.
    """
    y = np.asarray(samples, dtype=np.float32)
    if quality not in RESAMPLE_QUALITIES:
        raise ParameterError(f"quality must be one of {', '.join(RESAMPLE_QUALITIES)}, got {quality!r}")
    if rate <= 0 or target <= 0:
        raise ParameterError(f"sample rates must be positive, got {rate} -> {target}")
    if rate == target or not y.size:
        return y
    import soxr

    return soxr.resample(y, rate, target, quality=quality).astype(np.float32, copy=False)


def _reason_from_os_error(err: OSError) -> str:
    if err.errno == errno.ENOENT:
        return "no such file"
    if err.errno == errno.EISDIR:
        return "is a directory"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return f"cannot read file ({err.strerror or err.__class__.__name__})"


_AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"FORM", b"fLaC", b"OggS", b"ID3", b".snd", b"caff",
                b"riff", b"wvpk", b"MAC ", b"#!AMR", b"NIST_1A", b"\x30\x26\xb2\x75")


def _has_audio_magic(path: Path) -> bool:
    """Whether the file starts like a known audio container (so a read failure means damage)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    # ftyp: MP4 / M4A. A bare MPEG frame sync is not trusted: random bytes often start like one.
    return head.startswith(_AUDIO_MAGIC) or head[4:8] == b"ftyp"


def _read_soundfile(path: Path) -> tuple[np.ndarray, int] | str:
    """Read with libsndfile. Returns (frames x channels float32, rate) or a failure reason."""
    import soundfile as sf

    from ser_model.quiet import quiet_library_stderr

    try:
        with quiet_library_stderr():  # mpg123's warnings on a cut MP3 are not ours to print
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        text = (err.error_string or str(err)).strip().rstrip(".")
        if "not recognised" in text.lower() or not _has_audio_magic(path):
            return "not an audio file (unrecognised format)"
        return f"unreadable audio ({text})"
    except (sf.SoundFileError, RuntimeError, ValueError) as err:  # e.g. a broken header
        if not _has_audio_magic(path):
            return "not an audio file (unrecognised format)"
        return f"unreadable audio ({err})"
    except MemoryError:
        return "unreadable audio (header claims more samples than memory holds)"
    return data, int(rate)


def _read_audioread(path: Path) -> tuple[np.ndarray, int] | str:
    """Fallback decoder (ffmpeg via audioread) for what libsndfile cannot read (m4a, mp4 ...)."""
    import warnings

    try:
        with warnings.catch_warnings():  # audioread imports aifc/audioop/sunau (deprecated)
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioread
            import audioread.rawread
    except ImportError:
        return "audioread not installed"
    try:
        with audioread.audio_open(str(path)) as f:
            rate, channels = int(f.samplerate), int(f.channels)
            chunks = [np.frombuffer(buf, dtype="<i2") for buf in f]
    except (audioread.DecodeError, OSError, EOFError, ValueError) as err:
        return f"audioread: {err.__class__.__name__}"
    if rate <= 0 or channels <= 0:
        return "audioread: bad stream parameters"
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype="<i2")
    usable = pcm.size - pcm.size % channels
    data = (pcm[:usable].astype(np.float32) / 32768.0).reshape(-1, channels)
    return data, rate


def load_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int = TARGET_RATE,
    trim: bool = True,
    normalize: bool = True,
) -> np.ndarray:
    """Read any audio file to mono float32 at ``sample_rate`` and condition it (see ``prepare``).

    libsndfile (python-soundfile) reads WAV (8/16/24/32-bit PCM, float), FLAC, OGG/Vorbis,
    AIFF (also when misnamed ``.wav``), MP3 (libsndfile >= 1.1) and more; anything else is
    decoded through audioread/ffmpeg when available. Channels are averaged to mono.

    Args:
        path: audio file.
        sample_rate: output rate in Hz.
        trim: cut leading/trailing silence.
        normalize: loudness-normalise the voiced part (peak-limited).

    Returns:
        (n,) float32, finite, at ``sample_rate``. Digital silence loads fine (check
        ``is_silent``).

    Raises:
        AudioLoadError: (path, reason) for a missing path, a directory, no read permission,
            something that is not audio, a file with 0 samples, or one with no finite sample.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as err:
        raise AudioLoadError(p, _reason_from_os_error(err)) from None
    if p.is_dir():
        raise AudioLoadError(p, "is a directory")
    if st.st_size == 0:
        raise AudioLoadError(p, "empty file (0 bytes)")
    try:
        with open(p, "rb") as fh:
            fh.read(1)
    except OSError as err:
        raise AudioLoadError(p, _reason_from_os_error(err)) from None

    result = _read_soundfile(p)
    if isinstance(result, str):
        fallback = _read_audioread(p)
        if isinstance(fallback, str):
            raise AudioLoadError(p, result)
        result = fallback
    data, rate = result
    if data.shape[0] == 0:
        raise AudioLoadError(p, "empty audio (0 samples)")
    if rate <= 0:
        raise AudioLoadError(p, f"invalid sample rate ({rate})")
    finite = np.isfinite(data)
    if not finite.any():
        raise AudioLoadError(p, "audio contains no finite samples")
    if not finite.all():
        data = np.where(finite, data, np.float32(0.0))
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    return prepare(mono, sample_rate=rate, target_rate=sample_rate, trim=trim, normalize=normalize)
