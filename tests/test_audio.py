"""The one audio loader and the conditioning chain (ser_model.audio)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_model.audio import (
    PEAK_LIMIT,
    TARGET_DBFS,
    TARGET_RATE,
    is_silent,
    load_audio,
    prepare,
)
from ser_model.errors import AudioLoadError, ParameterError

SR = 16000


def _voice(sr: int = SR, seconds: float = 1.0, pad: float = 0.3, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: 1 s of an amplitude-modulated harmonic tone between pads of
    near-silence (noise 60 dB down), float32 at ``sr``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tone = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = 0.5 + 0.5 * np.abs(np.sin(2 * np.pi * 3 * t))
    voiced = 0.3 * env * tone / np.max(np.abs(tone))
    pad_n = int(pad * sr)
    y = np.concatenate([np.zeros(pad_n), voiced, np.zeros(pad_n)])
    y += 3e-4 * rng.standard_normal(y.size)
    return y.astype(np.float32)


def _fast_corr(a: np.ndarray, b: np.ndarray, max_lag: int = 2000) -> float:
    """Cross-correlation via FFT, normalised by the overlap energy (good enough to find lag)."""
    n = a.size + b.size
    spec = np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n))
    xc = np.fft.irfft(spec, n)
    lags = np.r_[np.arange(0, max_lag + 1), np.arange(-max_lag, 0)]
    lag = int(lags[np.argmax(xc[lags])])
    return _best_corr_at(a, b, lag)


def _best_corr_at(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    x = a[max(0, lag) :]
    y = b[max(0, -lag) :]
    m = min(x.size, y.size)
    x, y = x[:m] - x[:m].mean(), y[:m] - y[:m].mean()
    return float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y)))


def _check(y: np.ndarray) -> None:
    assert isinstance(y, np.ndarray)
    assert y.dtype == np.float32 and y.ndim == 1
    assert np.isfinite(y).all()


def _rms_dbfs(y: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


# --------------------------------------------------------------------------- real originals


def _originals(datasets: Path) -> list[Path]:
    folder = datasets / "originals"
    if not folder.is_dir():
        pytest.skip("no originals/ folder")
    return sorted(folder.iterdir())


def test_every_original_matches_its_16k_flac(datasets: Path) -> None:
    files = _originals(datasets)
    assert len(files) >= 5
    for path in files:
        y = load_audio(path, trim=False, normalize=False)
        _check(y)
        refs = list(datasets.glob(f"ravdess/*/{path.stem}.flac")) + list(
            datasets.glob(f"tess/*/{path.stem}.flac")
        )
        assert len(refs) == 1, path
        ref, rate = sf.read(refs[0], dtype="float32")
        assert rate == TARGET_RATE
        assert abs(y.size - ref.size) <= 2, (path.name, y.size, ref.size)
        corr = _best_corr_at(y, ref, 0)
        assert corr > 0.995, (path.name, corr)

        # and the full chain gives the same clip whichever file it starts from
        a, b = load_audio(path), load_audio(refs[0])
        _check(a)
        assert abs(a.size - b.size) <= 0.03 * SR
        assert _fast_corr(a, b, max_lag=800) > 0.99, path.name
        assert abs(_rms_dbfs(a) - _rms_dbfs(b)) < 1.0
        assert np.abs(a).max() <= PEAK_LIMIT + 1e-6


def test_aiff_named_wav_in_originals_is_really_aiff(datasets: Path) -> None:
    path = datasets / "originals" / "YAF_germ_angry.wav"
    if not path.exists():
        pytest.skip("YAF_germ_angry.wav not in originals/")
    assert path.read_bytes()[:4] == b"FORM"
    _check(load_audio(path))


# --------------------------------------------------------------------------- generated formats

_FORMATS = [
    ("pcm_u8.wav", {"subtype": "PCM_U8"}, SR, 0.97),
    ("pcm16.wav", {"subtype": "PCM_16"}, SR, 0.999),
    ("pcm24.wav", {"subtype": "PCM_24"}, SR, 0.999),
    ("pcm32.wav", {"subtype": "PCM_32"}, SR, 0.999),
    ("float.wav", {"subtype": "FLOAT"}, SR, 0.999),
    ("double.wav", {"subtype": "DOUBLE"}, SR, 0.999),
    ("rate8k.wav", {"subtype": "PCM_16"}, 8000, 0.97),
    ("rate22050.wav", {"subtype": "PCM_16"}, 22050, 0.995),
    ("rate44100.flac", {"format": "FLAC"}, 44100, 0.995),
    ("rate96k.wav", {"subtype": "PCM_24"}, 96000, 0.995),
    ("clip.flac", {"format": "FLAC"}, SR, 0.999),
    ("clip.ogg", {"format": "OGG", "subtype": "VORBIS"}, SR, 0.95),
    ("aiff_named.wav", {"format": "AIFF", "subtype": "PCM_16"}, SR, 0.999),
    ("clip.aiff", {"format": "AIFF", "subtype": "PCM_16"}, SR, 0.999),
]


@pytest.mark.parametrize(("name", "kwargs", "rate", "min_corr"), _FORMATS)
def test_generated_formats_load_alike(
    tmp_path: Path, name: str, kwargs: dict, rate: int, min_corr: float
) -> None:
    reference = _voice(SR)
    signal = _voice(rate)
    path = tmp_path / name
    sf.write(path, signal, rate, **kwargs)
    y = load_audio(path, trim=False, normalize=False)
    _check(y)
    assert abs(y.size - reference.size) <= 2
    assert _fast_corr(y, reference, max_lag=50) > min_corr
    conditioned = load_audio(path)
    _check(conditioned)
    # 0.3 s pads are trimmed (down to the 20 ms margins), the 1 s voice is kept; at 8 bits
    # the pads' quantisation noise (-48 dBFS) is within TRIM_TOP_DB of the voice: not trimmed
    upper = 1.61 if name == "pcm_u8.wav" else 1.1
    assert 0.98 * SR <= conditioned.size <= upper * SR, conditioned.size
    assert abs(_rms_dbfs(conditioned) - TARGET_DBFS) < 1.0


def test_mp3_when_libsndfile_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp3"
    try:
        sf.write(path, _voice(), SR, format="MP3")
    except (sf.LibsndfileError, TypeError, ValueError) as err:
        pytest.skip(f"libsndfile cannot write MP3 here: {err}")
    y = load_audio(path, trim=False, normalize=False)
    _check(y)
    assert abs(y.size - _voice().size) < 0.1 * SR  # encoder delay / padding
    assert _fast_corr(y, _voice(), max_lag=3000) > 0.9


def test_m4a_through_the_ffmpeg_fallback(tmp_path: Path) -> None:
    import shutil
    import subprocess

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg not installed: no fallback decoder for AAC")
    source = tmp_path / "src.wav"
    sf.write(source, _voice(), SR, subtype="PCM_16")
    path = tmp_path / "clip.m4a"
    done = subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-i", str(source), "-c:a", "aac", "-b:a", "96k", str(path)],
        capture_output=True,
        timeout=60,
    )
    if done.returncode != 0:
        pytest.skip(f"ffmpeg cannot encode AAC here: {done.stderr[-200:]!r}")
    y = load_audio(path, trim=False, normalize=False)
    _check(y)
    assert abs(y.size - _voice().size) < 0.1 * SR
    assert _fast_corr(y, _voice(), max_lag=3000) > 0.9


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_is_mixed_to_mono(tmp_path: Path, channels: int) -> None:
    mono = _voice()
    gains = np.linspace(1.0, 0.2, channels, dtype=np.float32)
    data = mono[:, None] * gains[None, :]
    path = tmp_path / f"ch{channels}.wav"
    sf.write(path, data, SR, subtype="FLOAT")
    y = load_audio(path, trim=False, normalize=False)
    _check(y)
    np.testing.assert_allclose(y, mono * gains.mean() - (mono * gains.mean()).mean(), atol=1e-5)


def test_float_wav_with_nan_and_inf(tmp_path: Path) -> None:
    signal = _voice()
    signal[1000] = np.nan
    signal[6000] = np.inf
    signal[9000] = -np.inf
    path = tmp_path / "nan.wav"
    sf.write(path, signal, SR, subtype="FLOAT")
    y = load_audio(path)
    _check(y)
    assert abs(_rms_dbfs(y) - TARGET_DBFS) < 1.0


def test_all_nan_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "allnan.wav"
    sf.write(path, np.full(1600, np.nan, dtype=np.float32), SR, subtype="FLOAT")
    with pytest.raises(AudioLoadError, match="no finite samples"):
        load_audio(path)


def test_dc_offset_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "dc.wav"
    sf.write(path, _voice() * 0.5 + 0.4, SR, subtype="FLOAT")
    y = load_audio(path, trim=False, normalize=False)
    assert abs(float(y.mean())) < 1e-3
    # and the offset did not fool the trimmer (a DC step would count as "sound")
    assert load_audio(path).size < 1.1 * SR


def test_digital_silence_loads_and_is_silent(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(SR * 2, dtype=np.int16), SR, subtype="PCM_16")
    y = load_audio(path)
    _check(y)
    assert y.size == 2 * SR  # never trimmed to nothing
    assert not np.any(y)  # and never amplified
    assert is_silent(y, sample_rate=SR)


def test_one_sample_file(tmp_path: Path) -> None:
    path = tmp_path / "one.wav"
    sf.write(path, np.array([0.5], dtype=np.float32), SR, subtype="FLOAT")
    y = load_audio(path)
    _check(y)
    assert y.size == 1
    assert is_silent(y, sample_rate=SR)


# --------------------------------------------------------------------------- errors


def _expect_error(path: Path, fragment: str) -> AudioLoadError:
    with pytest.raises(AudioLoadError) as info:
        load_audio(path)
    err = info.value
    assert fragment in err.reason, err.reason
    assert err.path == str(path)
    assert str(err).startswith(str(path))
    assert "\n" not in str(err)
    return err


def test_missing_path(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nope.wav", "no such file")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.wav").mkdir()
    _expect_error(tmp_path / "dir.wav", "is a directory")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    _expect_error(path, "empty")


def test_header_without_samples(tmp_path: Path) -> None:
    path = tmp_path / "nosamples.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), SR, subtype="PCM_16")
    _expect_error(path, "empty audio (0 samples)")


def test_truncated_header(tmp_path: Path) -> None:
    whole = tmp_path / "whole.wav"
    sf.write(whole, _voice(), SR, subtype="PCM_16")
    path = tmp_path / "truncated.wav"
    path.write_bytes(whole.read_bytes()[:20])
    err = _expect_error(path, "")
    assert "unreadable" in err.reason or "not an audio file" in err.reason


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.wav"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    _expect_error(path, "not an audio file")


def test_text_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    _expect_error(path, "not an audio file (unrecognised format)")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading")
    path = tmp_path / "locked.wav"
    sf.write(path, _voice(), SR, subtype="PCM_16")
    path.chmod(0)
    try:
        _expect_error(path, "permission denied")
    finally:
        path.chmod(0o644)


def test_error_is_a_ser_error_not_a_libsndfile_one(tmp_path: Path) -> None:
    from ser_model.errors import SerError

    path = tmp_path / "junk.flac"
    path.write_bytes(b"fLaC" + b"\x00" * 100)
    with pytest.raises(SerError) as info:
        load_audio(path)
    assert type(info.value) is AudioLoadError
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, AudioLoadError)


# --------------------------------------------------------------------------- prepare / is_silent


def test_prepare_matches_load_audio(tmp_path: Path) -> None:
    signal = _voice(22050)
    path = tmp_path / "x.wav"
    sf.write(path, signal, 22050, subtype="FLOAT")
    np.testing.assert_allclose(
        load_audio(path), prepare(signal, sample_rate=22050), rtol=0, atol=1e-6
    )


def test_prepare_int16_input_is_scaled() -> None:
    signal = _voice()
    as_int = np.round(signal * 32767).astype(np.int16)
    a = prepare(as_int, sample_rate=SR, normalize=False, trim=False)
    np.testing.assert_allclose(a, signal - signal.mean(), atol=1e-4)


def test_prepare_normalises_and_limits_peak() -> None:
    quiet = _voice() * 0.04
    y = prepare(quiet, sample_rate=SR)
    assert abs(_rms_dbfs(y) - TARGET_DBFS) < 1.0
    spiky = _voice() * 0.05
    spiky[8000] = 1.0  # one click dominates the peak
    z = prepare(spiky, sample_rate=SR)
    assert np.abs(z).max() <= PEAK_LIMIT + 1e-6


def test_prepare_rejects_bad_parameters() -> None:
    with pytest.raises(ParameterError):
        prepare(np.zeros((2, 100), dtype=np.float32), sample_rate=SR)
    with pytest.raises(ParameterError):
        prepare(np.zeros(100, dtype=np.float32), sample_rate=0)
    with pytest.raises(ParameterError):
        prepare(np.array(["a", "b"]), sample_rate=SR)


def test_prepare_empty_and_nonfinite_input() -> None:
    out = prepare(np.zeros(0, dtype=np.float32), sample_rate=SR)
    assert out.size == 0 and out.dtype == np.float32
    assert is_silent(out, sample_rate=SR)
    bad = np.full(SR, np.nan, dtype=np.float32)
    y = prepare(bad, sample_rate=SR)
    _check(y)
    assert is_silent(y, sample_rate=SR)


def test_is_silent() -> None:
    assert is_silent(np.zeros(SR, dtype=np.float32), sample_rate=SR)
    assert is_silent(np.full(SR, 0.3, dtype=np.float32), sample_rate=SR)  # pure DC
    rng = np.random.default_rng(0)
    assert is_silent((1e-4 * rng.standard_normal(SR)).astype(np.float32), sample_rate=SR)
    assert is_silent(_voice()[:800], sample_rate=SR)  # 50 ms: too short
    assert not is_silent(_voice(), sample_rate=SR)
    assert not is_silent(_voice() * 0.03, sample_rate=SR)  # quiet speech is still speech
    # prepare never turns silence into sound
    hiss = (3e-5 * rng.standard_normal(SR)).astype(np.float32)
    assert is_silent(prepare(hiss, sample_rate=SR), sample_rate=SR)


def test_prepare_cost_on_three_seconds() -> None:
    y = np.resize(_voice(), 3 * SR)
    prepare(y, sample_rate=SR)
    runs = 50
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(runs):
            prepare(y, sample_rate=SR)
        best = min(best, (time.perf_counter() - start) / runs)
    assert best < 2e-3, f"prepare took {best * 1e3:.2f} ms on 3 s of 16 kHz audio"


# -- the one resampler -----------------------------------------------------------------------------


def _tone(freq: float, rate: int, seconds: float = 0.5) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate).astype(np.float32)


def _power_at(y: np.ndarray, freq: float, rate: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)))) / len(y)
    return float(spec[int(round(freq * len(y) / rate))])


@pytest.mark.parametrize("quality", ["MQ", "HQ"])  # QQ (microphone frames) is not band-limited
def test_resample_keeps_the_band_and_drops_what_would_fold_back(quality):
    from ser_model.audio import resample

    y = resample(_tone(1000, 48000) + _tone(11000, 48000), 48000, 16000, quality=quality)
    assert y.dtype == np.float32 and len(y) == 8000
    # 1 kHz kept; 11 kHz (above the new 8 kHz Nyquist) removed, not folded back to 5 kHz as
    # the linear interpolation that assistant.stt used to do folded it
    assert _power_at(y, 1000, 16000) > 0.2 and _power_at(y, 5000, 16000) < 0.01
    x = np.arange(24000) / 48000
    linear = np.interp(np.arange(8000) / 16000, x, _tone(1000, 48000) + _tone(11000, 48000))
    assert _power_at(linear.astype(np.float32), 5000, 16000) > 0.1


def test_resample_frames_keep_their_length_and_refuses_bad_arguments():
    from ser_model.audio import resample

    for rate in (48000, 44100, 22050, 8000):  # one 32 ms microphone frame -> one 512-sample VAD frame
        assert len(resample(_tone(440, rate, 0.032), rate, 16000, quality="QQ")) == 512
    same = _tone(440, 16000)
    assert resample(same, 16000, 16000) is not None and np.array_equal(resample(same, 16000, 16000), same)
    with pytest.raises(ParameterError, match="quality"):
        resample(same, 48000, 16000, quality="best")
    with pytest.raises(ParameterError, match="positive"):
        resample(same, 0, 16000)


def test_the_assistant_has_no_resampler_of_its_own():
    assistant = Path(__file__).resolve().parents[1] / "assistant"
    for path in assistant.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "np.interp(" not in text and "import soxr" not in text and "def _resample" not in text, path
