"""Simulated recording channels for ser-v3's channel-augmented training copies.

A *channel copy* of a clip is the clip as another device in another room would have recorded
it: room reverberation, a band-limited microphone, additive noise and a level change, made of
:mod:`ser_model.augment`'s functions (no DSP of its own). Copy ``index`` of a speaker is one
simulated *device*: its room, band, noise colour, SNR and gain are drawn once from the speaker
and the index, so every clip of ``ravdess:01@ch1`` went through the same channel, as a user's
clips do (the per-speaker profile then sees a consistent channel, as it does in use); only the
noise samples are drawn per clip (from its file name and the index). Both seeds are SHA-256
based, so a copy is the same on every run and machine and the feature cache stays valid.

Public API::

    CHANNEL                                   # the Augmenter ranges a device is drawn from
    ChannelCopy(index, device, settings)      # one clip's copy: cache_tag(), __call__(y, ...)
    channel_speaker(speaker, index) -> str    # "ravdess:01" -> "ravdess:01@ch1"
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ser_model.augment import Augmenter, add_noise, band_limit, gain, reverb

__all__ = ["CHANNEL", "ChannelCopy", "channel_speaker"]

#: The ranges a simulated device is drawn from (only the channel steps of the Augmenter:
#: reverb, band limit, noise, gain; never speed, pitch, stretch or shift, which change the voice).
CHANNEL = replace(
    Augmenter.off(),
    p_reverb=0.6, rt60_range=(0.2, 0.7), drr_db_range=(0.0, 10.0),
    p_band_limit=0.7, low_hz_range=(80.0, 400.0), high_hz_range=(3400.0, 7500.0),
    p_noise=1.0, snr_db_range=(15.0, 30.0), noise_colors=("white", "pink", "brown"),
    p_gain=1.0, gain_db_range=(-10.0, 6.0),
)

#: Band-limit filter orders a device is drawn from (1: a gentle EQ-like tilt, 4: a steep band).
_ORDERS = (1, 2, 4)


def channel_speaker(speaker: str, index: int) -> str:
    """The speaker id of copy ``index`` of ``speaker``'s clips (``ravdess:01@ch1``)."""
    return f"{speaker}@ch{index}"


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little")


@dataclass(frozen=True)
class ChannelCopy:
    """Copy ``index`` (1, 2, ...) of one clip of speaker ``device``, through that speaker's
    simulated device ``index`` drawn from ``settings``."""

    index: int
    device: str
    settings: Augmenter = CHANNEL

    def cache_tag(self) -> str:
        """What the copy's features depend on beyond the file (for the feature cache key)."""
        return f"channel={self.index}|{self.device}|{json.dumps(self.settings.to_dict(), sort_keys=True)}"

    def __call__(self, y: np.ndarray, *, sample_rate: float, clip: str | Path) -> np.ndarray:
        """``y`` (a prepared clip, the file ``clip``) through the device. Same input, same output."""
        s = self.settings
        dev = np.random.default_rng(_seed("device", self.device, self.index))
        noise_rng = np.random.default_rng(_seed("clip", Path(clip).stem, self.index))
        ir_rng = np.random.default_rng(_seed("room", self.device, self.index))  # the same room for every clip
        x = np.asarray(y, dtype=np.float32)
        if dev.random() < s.p_reverb:
            x = reverb(x, sample_rate=sample_rate, rng=ir_rng, rt60=dev.uniform(*s.rt60_range),
                       drr_db=dev.uniform(*s.drr_db_range))
        if dev.random() < s.p_band_limit:
            low = dev.uniform(*s.low_hz_range)
            high = min(dev.uniform(*s.high_hz_range), 0.45 * sample_rate)
            order = _ORDERS[int(dev.integers(len(_ORDERS)))]
            if high > low:
                x = band_limit(x, sample_rate=sample_rate, low_hz=low, high_hz=high, order=order)
        if dev.random() < s.p_noise:
            color = s.noise_colors[int(dev.integers(len(s.noise_colors)))]
            x = add_noise(x, snr_db=dev.uniform(*s.snr_db_range), rng=noise_rng, color=color)
        if dev.random() < s.p_gain:
            x = gain(x, db=dev.uniform(*s.gain_db_range))
        return x
