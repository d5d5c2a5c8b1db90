"""Waveform and feature augmentation (ser_model.augment)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser_model.augment import (
    NOISE_COLORS,
    Augmenter,
    add_noise,
    band_limit,
    gain,
    pitch_shift,
    reverb,
    spec_augment,
    speed,
    time_shift,
    time_stretch,
)
from ser_model.errors import ParameterError

SR = 16000


def _voice(seconds: float = 1.5, f0: float = 180.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    env = 0.5 + 0.5 * np.abs(np.sin(2 * np.pi * 2.5 * t))
    return (amp * env * tone / np.max(np.abs(tone))).astype(np.float32)


def _f0(y: np.ndarray) -> float:
    """Fundamental by autocorrelation peak between 80 and 500 Hz."""
    y = y - y.mean()
    ac = np.fft.irfft(np.abs(np.fft.rfft(y, 2 * y.size)) ** 2)[: y.size]
    lo, hi = SR // 500, SR // 80
    return SR / (lo + int(np.argmax(ac[lo:hi])))


def _ok(y: np.ndarray) -> None:
    assert y.dtype == np.float32 and y.ndim == 1
    assert np.isfinite(y).all()
    assert np.abs(y).max() <= 1.0


def _all_ops(y: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "noise": add_noise(y, snr_db=5, rng=rng, color="pink"),
        "speed": speed(y, rate=1.15),
        "stretch": time_stretch(y, rate=0.85, sample_rate=SR),
        "pitch": pitch_shift(y, sample_rate=SR, n_steps=-3),
        "shift": time_shift(y, max_fraction=0.2, rng=rng),
        "gain": gain(y, db=12),
        "reverb": reverb(y, sample_rate=SR, rng=rng, rt60=0.6),
        "band": band_limit(y, sample_rate=SR, low_hz=300, high_hz=3400),
        "chain": Augmenter(p_speed=1, p_pitch=1, p_stretch=1, p_reverb=1, p_band_limit=1,
                           p_noise=1, p_gain=1, p_shift=1)(y, sample_rate=SR, rng=rng),
    }  # fmt: skip


def test_deterministic_given_the_seed() -> None:
    y = _voice()
    a = _all_ops(y, np.random.default_rng(7))
    b = _all_ops(y, np.random.default_rng(7))
    c = _all_ops(y, np.random.default_rng(8))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    for name in ("noise", "reverb", "chain"):
        assert not np.array_equal(a[name], c[name]), name


def test_outputs_finite_float32_bounded_and_input_untouched() -> None:
    loud = _voice(amp=0.99)
    loud[100] = np.nan  # non-finite input counts as 0
    keep = loud.copy()
    for name, out in _all_ops(loud, np.random.default_rng(0)).items():
        _ok(out)
        assert np.abs(out).max() > 0.05, name
    np.testing.assert_array_equal(loud, keep)
    for ints in (np.array([0, 1000, -1000] * 2000, dtype=np.int16),):
        _ok(gain(ints, db=0))


def test_lengths() -> None:
    y = _voice(1.0)
    n = y.size
    rng = np.random.default_rng(1)
    assert speed(y, rate=1.25).size == round(n / 1.25)
    assert speed(y, rate=0.8).size == round(n / 0.8)
    assert time_stretch(y, rate=1.25, sample_rate=SR).size == round(n / 1.25)
    assert time_stretch(y, rate=0.8, sample_rate=SR).size == round(n / 0.8)
    for out in (
        pitch_shift(y, sample_rate=SR, n_steps=4),
        add_noise(y, snr_db=10, rng=rng, color="brown"),
        time_shift(y, max_fraction=0.5, rng=rng),
        gain(y, db=-6),
        reverb(y, sample_rate=SR, rng=rng, rt60=1.0),
        band_limit(y, sample_rate=SR, low_hz=0, high_hz=4000),
        Augmenter(p_speed=0)(y, sample_rate=SR, rng=rng),
    ):
        assert out.size == n
    # empty input stays empty everywhere
    empty = np.zeros(0, dtype=np.float32)
    assert speed(empty, rate=1.1).size == 0
    assert time_stretch(empty, rate=1.1).size == 0
    assert pitch_shift(empty, sample_rate=SR, n_steps=1).size == 0
    assert add_noise(empty, snr_db=10, rng=rng).size == 0


@pytest.mark.parametrize("color", sorted(NOISE_COLORS))
@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 20.0, 40.0])
def test_snr_is_achieved(color: str, snr_db: float) -> None:
    y = _voice(amp=0.05)  # quiet: no peak scaling, so the noise is out - y
    out = add_noise(y, snr_db=snr_db, rng=np.random.default_rng(3), color=color)
    noise = out.astype(np.float64) - y
    measured = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(noise**2))
    assert abs(measured - snr_db) < 0.5


def test_snr_survives_peak_scaling() -> None:
    y = _voice(amp=0.95)
    out = add_noise(y, snr_db=0.0, rng=np.random.default_rng(3))
    _ok(out)
    scale = float(np.dot(out, y) / np.dot(y, y))  # the noise is independent of y
    assert scale < 1.0  # it was scaled down to stay <= 1
    noise = out / scale - y
    measured = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(noise**2))
    assert abs(measured) < 0.5


def test_noise_colours_differ_in_spectrum() -> None:
    slopes = {}
    for color in NOISE_COLORS:
        out = add_noise(_voice(amp=0.05), snr_db=-20, rng=np.random.default_rng(0), color=color)
        spec = np.abs(np.fft.rfft(out)) ** 2
        freqs = np.fft.rfftfreq(out.size, 1 / SR)
        low = spec[(freqs > 100) & (freqs < 400)].mean()
        high = spec[(freqs > 3200) & (freqs < 6400)].mean()
        slopes[color] = 10 * np.log10(low / high)
    assert abs(slopes["white"]) < 6  # flat (the voice adds a little at low f)
    assert slopes["pink"] > slopes["white"] + 6
    assert slopes["brown"] > slopes["pink"] + 6


def test_silence_gets_no_noise() -> None:
    out = add_noise(np.zeros(SR, np.float32), snr_db=10, rng=np.random.default_rng(0))
    assert not out.any()


def test_pitch_speed_and_stretch_do_what_they_say() -> None:
    y = _voice(f0=200.0)
    assert _f0(y) == pytest.approx(200, rel=0.02)
    assert _f0(pitch_shift(y, sample_rate=SR, n_steps=12)) == pytest.approx(400, rel=0.03)
    assert _f0(pitch_shift(y, sample_rate=SR, n_steps=-5)) == pytest.approx(
        200 * 2 ** (-5 / 12), rel=0.03
    )
    assert _f0(speed(y, rate=1.2)) == pytest.approx(240, rel=0.03)
    assert _f0(time_stretch(y, rate=1.3, sample_rate=SR)) == pytest.approx(200, rel=0.03)
    # near-identity stretch is (almost) the identity: WSOLA keeps the waveform aligned
    z = time_stretch(y, rate=1.001, sample_rate=SR)
    m = min(z.size, y.size) - 200
    assert np.corrcoef(z[:m], y[:m])[0, 1] > 0.99


def test_time_shift_moves_content_with_zero_fill() -> None:
    y = np.arange(1, 1001, dtype=np.float32) / 1000
    out = time_shift(y, max_fraction=0.1, rng=np.random.default_rng(5))
    shift = int(np.flatnonzero(out == y[500])[0]) - 500
    assert 0 < abs(shift) <= 100
    if shift > 0:
        assert not out[:shift].any()
    else:
        assert not out[shift:].any()
    np.testing.assert_array_equal(time_shift(y, max_fraction=0.0, rng=np.random.default_rng(0)), y)


def test_gain() -> None:
    y = _voice(amp=0.1)
    np.testing.assert_allclose(gain(y, db=6.0), y * 10 ** (6 / 20), rtol=1e-5)
    scaled = gain(y, db=40.0)
    assert np.abs(scaled).max() == pytest.approx(1.0)
    np.testing.assert_allclose(scaled / np.abs(scaled).max(), y / np.abs(y).max(), atol=1e-6)
    clipped = gain(y, db=40.0, clip=True)
    assert np.abs(clipped).max() == 1.0 and np.mean(np.abs(clipped) == 1.0) > 0.1


def test_reverb_keeps_rms_and_adds_a_tail() -> None:
    y = np.zeros(SR, np.float32)
    y[: SR // 10] = _voice(0.1)
    out = reverb(y, sample_rate=SR, rng=np.random.default_rng(0), rt60=0.8, drr_db=0.0)
    rms = lambda z: float(np.sqrt(np.mean(z.astype(np.float64) ** 2)))  # noqa: E731
    assert rms(out) == pytest.approx(rms(y), rel=1e-3)
    tail = out[int(0.15 * SR) : int(0.3 * SR)]  # after the sound stopped
    assert rms(tail) > 0.01 * rms(y)
    dry = reverb(y, sample_rate=SR, rng=np.random.default_rng(0), rt60=0.8, drr_db=40.0)
    assert np.corrcoef(dry, y)[0, 1] > 0.99


def test_band_limit_removes_out_of_band_energy() -> None:
    t = np.arange(SR) / SR
    y = (0.3 * np.sin(2 * np.pi * 100 * t) + 0.3 * np.sin(2 * np.pi * 1000 * t)
         + 0.3 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)  # fmt: skip
    out = band_limit(y, sample_rate=SR, low_hz=300, high_hz=3400)
    spec = np.abs(np.fft.rfft(out[SR // 4 :]))
    freqs = np.fft.rfftfreq(out[SR // 4 :].size, 1 / SR)
    at = lambda f: spec[np.argmin(np.abs(freqs - f))]  # noqa: E731
    assert at(100) < 0.05 * at(1000)
    assert at(6000) < 0.05 * at(1000)


def test_spec_augment() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 40)).astype(np.float32) + 5.0
    out = spec_augment(x, rng=np.random.default_rng(1), n_freq_masks=2, max_freq=10,
                       n_time_masks=2, max_time=30)  # fmt: skip
    assert out.shape == x.shape and out.dtype == np.float32
    changed = out != x
    assert changed.any()
    cols = np.flatnonzero(changed.all(axis=0))
    rows = np.flatnonzero(changed.all(axis=1))
    assert cols.size <= 20 and rows.size <= 60
    # masked cells hold their column's mean
    masked = np.argwhere(changed)
    means = x.mean(axis=0)
    np.testing.assert_allclose(out[changed], means[masked[:, 1]], rtol=1e-5)
    again = spec_augment(x, rng=np.random.default_rng(1), n_freq_masks=2, max_freq=10,
                         n_time_masks=2, max_time=30)  # fmt: skip
    np.testing.assert_array_equal(out, again)
    zero = spec_augment(x, rng=rng, fill=0.0, n_freq_masks=3, max_freq=40, n_time_masks=0)
    assert (zero == 0).any()
    np.testing.assert_array_equal(spec_augment(x, rng=rng, n_freq_masks=0, n_time_masks=0), x)


@pytest.mark.parametrize(
    "call",
    [
        lambda y, r: add_noise(y, snr_db=float("nan"), rng=r),
        lambda y, r: add_noise(y, snr_db=10, rng=r, color="purple"),
        lambda y, r: add_noise(y, snr_db=10, rng=42),
        lambda y, r: add_noise(y.reshape(2, -1), snr_db=10, rng=r),
        lambda y, r: speed(y, rate=0),
        lambda y, r: speed(y, rate=3.0),
        lambda y, r: time_stretch(y, rate=-1),
        lambda y, r: pitch_shift(y, sample_rate=SR, n_steps=24),
        lambda y, r: pitch_shift(y, sample_rate=0, n_steps=1),
        lambda y, r: time_shift(y, max_fraction=0.9, rng=r),
        lambda y, r: gain(y, db=float("inf")),
        lambda y, r: reverb(y, sample_rate=SR, rng=r, rt60=0),
        lambda y, r: reverb(y, sample_rate=SR, rng=r, rt60=10),
        lambda y, r: band_limit(y, sample_rate=SR, low_hz=3000, high_hz=300),
        lambda y, r: band_limit(y, sample_rate=SR, low_hz=9000, high_hz=9500),
        lambda y, r: spec_augment(y, rng=r),
        lambda y, r: spec_augment(y.reshape(-1, 8), rng=r, max_time=-1),
        lambda y, r: spec_augment(y.reshape(-1, 8), rng=r, fill="median"),
    ],
)
def test_bad_parameters_raise_parameter_error(call) -> None:
    with pytest.raises(ParameterError):
        call(_voice(0.1), np.random.default_rng(0))


def test_augmenter_config_round_trip_and_validation() -> None:
    aug = Augmenter(p_noise=0.9, snr_db_range=(5.0, 15.0), noise_colors=("pink",))
    d = aug.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["snr_db_range"] == [5.0, 15.0]
    assert Augmenter.from_dict(d) == aug
    assert Augmenter.from_dict({}) == Augmenter()
    with pytest.raises(AttributeError):
        aug.p_noise = 0.1  # type: ignore[misc]
    for bad in (
        {"p_noise": 1.5},
        {"snr_db_range": (20.0, 10.0)},
        {"speed_range": [0.1, 1.0]},
        {"noise_colors": ["blue"]},
        {"max_shift_fraction": 0.9},
        {"p_speeed": 0.5},
    ):
        with pytest.raises(ParameterError):
            Augmenter.from_dict(bad)


def test_augmenter_off_is_identity_and_chain_varies() -> None:
    y = _voice(amp=0.3)
    off = Augmenter.off()
    assert not off.enabled and Augmenter().enabled
    np.testing.assert_array_equal(off(y, sample_rate=SR, rng=np.random.default_rng(0)), y)
    aug = Augmenter()
    rng = np.random.default_rng(0)
    outs = [aug(y, sample_rate=SR, rng=rng) for _ in range(10)]
    for out in outs:
        _ok(out)
        assert 0.85 * y.size <= out.size <= 1.15 * y.size
    assert len({o.tobytes() for o in outs}) == 10
