"""Feature extraction over a list of clips, with an on-disk cache (``.npz``, never pickle).

``extract_frames`` / ``extract_pooled`` load every clip with ``ser_model.audio.load_audio``
(the same conditioning the recognizer applies), optionally pass it through an
``ser_model.augment.Augmenter`` (augmented copies are only ever used for *training* clips:
callers pick the copies of their fold's training clips and never of its test clips), then
compute features. Results are cached under ``.cache/features/`` keyed by a SHA-256 of the
feature settings, the augmentation settings and copy index, the seed and the file list
(paths, sizes, modification times), so changing any of them recomputes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser_model.bundle import sha256_file
from ser_model.corpora import Clip
from ser_model.errors import ParameterError
from ser_model.features import FeatureSettings, frame_features, pooled_features
from ser_model.labels import LABELS
from ser_model.outpaths import save_npz_atomic

CACHE_VERSION = 1
DEFAULT_CACHE_DIR = Path(".cache") / "features"


def default_cache_dir() -> Path:
    """``$SER_CACHE_DIR`` if set, else ``.cache/features`` in the current directory."""
    env = os.environ.get("SER_CACHE_DIR")
    return Path(env) if env else DEFAULT_CACHE_DIR


@dataclass(frozen=True)
class FrameSet:
    """Variable-length frame features of many clips, stored flat with offsets."""

    data: np.ndarray
    """All clips' frames concatenated: (total_frames, n_features) float32."""
    offsets: np.ndarray
    """(n_clips + 1,) int64: clip i is ``data[offsets[i]:offsets[i+1]]``."""

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.data[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def labels_of(clips: Sequence[Clip]) -> np.ndarray:
    """Label indices (into LABELS) of the clips, int64."""
    return np.array([LABELS.index(c.label) for c in clips], dtype=np.int64)


def speakers_of(clips: Sequence[Clip]) -> np.ndarray:
    """Speaker ids of the clips (e.g. ``ravdess:01``), as a numpy string array."""
    return np.array([c.speaker for c in clips])


def _key(kind: str, clips: Sequence[Clip], settings: FeatureSettings, augment: dict | None,
         copy: int, seed: int) -> str:
    h = hashlib.sha256()
    meta = {"v": CACHE_VERSION, "kind": kind, "features": settings.to_dict(), "augment": augment,
            "copy": copy, "seed": seed}
    h.update(json.dumps(meta, sort_keys=True).encode())
    for c in clips:  # by name and content, not folder and mtime (see encoder_features._cache_key)
        try:
            h.update(f"{Path(c.path).name}|{sha256_file(c.path)}\n".encode())
        except OSError:
            h.update(f"{c.path}|missing\n".encode())
    return h.hexdigest()[:24]


def _clip_waveform(clip: Clip, index: int, settings: FeatureSettings, augmenter, copy: int, seed: int) -> np.ndarray:
    from ser_model.audio import load_audio, prepare

    y = load_audio(clip.path, sample_rate=settings.sample_rate)
    if augmenter is not None:
        rng = np.random.default_rng([seed, copy, index])
        y = augmenter(y, sample_rate=settings.sample_rate, rng=rng)
        y = prepare(y, sample_rate=settings.sample_rate, target_rate=settings.sample_rate, trim=False)
    return y


def _progress(description: str, total: int, enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), disable=not enabled, transient=True)


def _extract(kind: str, clips: Sequence[Clip], settings: FeatureSettings, augment, copy: int, seed: int,
             cache_dir: Path | None, progress: bool):
    if kind not in ("frames", "pooled"):
        raise ParameterError(f"kind must be 'frames' or 'pooled', got {kind!r}")
    aug_dict = augment.to_dict() if augment is not None else None
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{kind}-{_key(kind, clips, settings, aug_dict, copy, seed)}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                if kind == "frames":
                    return FrameSet(z["data"], z["offsets"])
                return z["data"]
    feats: list[np.ndarray] = []
    label = f"{kind}" + (f" (augmented copy {copy})" if augment is not None else "")
    with _progress(label, len(clips), progress) as bar:
        task = bar.add_task(f"features: {label}", total=len(clips))
        for i, clip in enumerate(clips):
            y = _clip_waveform(clip, i, settings, augment, copy, seed)
            fn = frame_features if kind == "frames" else pooled_features
            feats.append(fn(y, settings=settings))
            bar.advance(task)
    if kind == "frames":
        lengths = np.array([len(f) for f in feats], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        data = (
            np.concatenate(feats).astype(np.float32) if feats else np.zeros((0, settings.n_frame_features), np.float32)
        )
        result = FrameSet(data, offsets)
        arrays = {"data": data, "offsets": offsets}
    else:
        result = np.stack(feats).astype(np.float32) if feats else np.zeros((0, settings.n_pooled_features), np.float32)
        arrays = {"data": result}
    if path is not None:
        save_npz_atomic(path, **arrays)
    return result


def extract_frames(clips: Sequence[Clip], *, settings: FeatureSettings, augment=None, copy: int = 0,
                   seed: int = 0, cache_dir: str | Path | None = None, progress: bool = True) -> FrameSet:
    """Frame features (``frame_features``) of every clip, in order.

    ``augment``: an ``ser_model.augment.Augmenter`` to apply to each waveform first (copy
    ``copy`` of the augmented set, random state seeded from ``(seed, copy, clip index)``), or
    None for the clean features. ``cache_dir``: where to cache (None: no cache).
    Raises AudioLoadError for an unreadable clip.
    """
    return _extract("frames", clips, settings, augment, copy, seed,
                    None if cache_dir is None else Path(cache_dir), progress)


def extract_pooled(clips: Sequence[Clip], *, settings: FeatureSettings, cache_dir: str | Path | None = None,
                   progress: bool = True) -> np.ndarray:
    """Pooled features (``pooled_features``) of every clip: (n_clips, n_pooled_features) float32."""
    return _extract("pooled", clips, settings, None, 0, 0, None if cache_dir is None else Path(cache_dir), progress)


def fit_normalization(frames: FrameSet, indices: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std (std floored at 1e-5) over all frames of the chosen clips."""
    idx = range(len(frames)) if indices is None else indices
    data = np.concatenate([frames[i] for i in idx]) if len(idx) else frames.data
    return data.mean(axis=0).astype(np.float32), (data.std(axis=0) + 1e-5).astype(np.float32)


def fit_to_length(x: np.ndarray, max_frames: int, *, rng: np.random.Generator | None = None) -> np.ndarray:
    """Crop or zero-pad (at the end) ``x`` (frames, F) to exactly ``max_frames`` frames.

    Without ``rng`` a longer input keeps its first ``max_frames`` frames (what the recognizer
    does); with ``rng`` a random window is taken (training-time crop augmentation).
    """
    if len(x) > max_frames:
        start = int(rng.integers(0, len(x) - max_frames + 1)) if rng is not None else 0
        return x[start : start + max_frames]
    return np.pad(x, ((0, max_frames - len(x)), (0, 0)))


def batch_frames(frames: Sequence[np.ndarray], mean: np.ndarray, std: np.ndarray, max_frames: int,
                 *, rng: np.random.Generator | None = None) -> np.ndarray:
    """Normalise, then crop/pad each clip: (n, max_frames, F) float32 model input."""
    out = np.zeros((len(frames), max_frames, len(mean)), dtype=np.float32)
    for i, x in enumerate(frames):
        out[i] = fit_to_length((x - mean) / std, max_frames, rng=rng)
    return out
