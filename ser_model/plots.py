"""Figures: normalised confusion matrix, training curves, per-class F1, and ``plot-examples``
(waveform + log-mel spectrogram of one clip per emotion). Matplotlib (Agg) is imported lazily.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ser_model.errors import SerError
from ser_model.labels import LABELS


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(counts: np.ndarray, path: str | Path, *, labels: Sequence[str] = LABELS, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows: true label, so the diagonal is per-class recall)."""
    plt = _plt()
    counts = np.asarray(counts, dtype=float)
    norm = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path, dpi=110)


def plot_training_curves(histories: Mapping[str, Sequence[Sequence[Mapping]]], path: str | Path) -> Path:
    """Training loss and validation-speaker UAR per epoch, one line per fold, one column per model.

    ``histories``: model name -> per fold -> list of ``{"epoch", "loss", "val_uar"?}``.
    """
    plt = _plt()
    names = [n for n in histories if histories[n]]
    fig, axes = plt.subplots(2, max(len(names), 1), figsize=(4.2 * max(len(names), 1), 6.4), squeeze=False)
    for col, name in enumerate(names):
        for k, hist in enumerate(histories[name]):
            ep = [h["epoch"] for h in hist]
            axes[0, col].plot(ep, [h["loss"] for h in hist], label=f"fold {k}")
            if hist and "val_uar" in hist[0]:
                axes[1, col].plot(ep, [h["val_uar"] for h in hist], label=f"fold {k}")
        axes[0, col].set_title(f"{name}: training loss")
        axes[1, col].set_title(f"{name}: validation-speaker UAR")
        axes[1, col].set_xlabel("epoch")
        axes[0, col].legend(fontsize=7)
    return _save(fig, path, dpi=100)


def plot_per_class_f1(per_class: Mapping[str, Sequence[float]], path: str | Path, *,
                      labels: Sequence[str] = LABELS) -> Path:
    """Grouped bars: F1 per emotion (over all folds' predictions) for each model."""
    plt = _plt()
    names = list(per_class)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    x = np.arange(len(labels))
    for i, name in enumerate(names):
        ax.bar(x + (i - (len(names) - 1) / 2) * width, per_class[name], width, label=name)
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1 (held-out speakers)")
    ax.legend(fontsize=8, ncols=min(len(names), 4))
    return _save(fig, path, dpi=100)


def plot_examples(data_dir: str | Path, out: str | Path, *, actor: int | None = None) -> Path:
    """One clip per emotion (RAVDESS, one actor, strong intensity when there is one): waveform
    and log-mel spectrogram side by side, saved as one PNG at ``out`` (a .png path or a folder,
    which gets ``examples.png``). Raises SerError when no RAVDESS/TESS clips are found."""
    from ser_model.audio import load_audio
    from ser_model.corpora import scan
    from ser_model.features import FeatureSettings, frame_features

    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise SerError(f"no such folder: {data_dir}")
    roots = [data_dir / c for c in ("ravdess", "tess") if (data_dir / c).is_dir()] or [data_dir]
    clips = [c for r in roots for c in scan(r).clips if c.corpus in ("ravdess", "tess")]
    if actor is not None:
        clips = [c for c in clips if c.speaker == f"ravdess:{actor:02d}"]
    chosen = {}
    for c in sorted(clips, key=lambda c: (c.corpus != "ravdess", "-02-" not in c.path.name, str(c.path))):
        chosen.setdefault(c.label, c)
    if not chosen:
        raise SerError(f"no RAVDESS or TESS clips under {data_dir}")
    settings = FeatureSettings(parts=("logmel",), utterance_norm="none")
    plt = _plt()
    rows = [lab for lab in LABELS if lab in chosen]
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 1.9 * len(rows)), squeeze=False)
    for r, lab in enumerate(rows):
        clip = chosen[lab]
        y = load_audio(clip.path, sample_rate=settings.sample_rate)
        t = np.arange(len(y)) / settings.sample_rate
        axes[r, 0].plot(t, y, lw=0.4)
        axes[r, 0].set_ylabel(lab)
        axes[r, 0].set_xlim(0, t[-1] if len(t) else 1)
        axes[r, 0].set_title(f"{clip.path.name} ({clip.speaker})", fontsize=8)
        mel = frame_features(y, settings=settings)
        secs = len(mel) * settings.hop_length / settings.sample_rate
        axes[r, 1].imshow(mel.T, origin="lower", aspect="auto", cmap="magma", extent=(0, secs, 0, settings.n_mels))
        axes[r, 1].set_ylabel("mel band")
    axes[-1, 0].set_xlabel("seconds")
    axes[-1, 1].set_xlabel("seconds")
    fig.suptitle("waveform and log-mel spectrogram (dB) per emotion")
    out = Path(out)
    from ser_model.outpaths import PLOT_SUFFIXES

    return _save(fig, out if out.suffix.lower() in PLOT_SUFFIXES else out / "examples.png", dpi=72)


def add_plot_examples_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``ser-model plot-examples DIR``."""
    parser.add_argument("data_dir", help="corpora folder (e.g. ../shared/datasets)")
    from ser_model.outpaths import PLOT_SUFFIXES, check_output_file_or_dir

    parser.add_argument("--out", default="docs/results", type=check_output_file_or_dir(PLOT_SUFFIXES),
                        help="output .png (.pdf, .svg, ...) file or folder (default docs/results)")
    parser.add_argument("--actor", type=int, default=None, help="RAVDESS actor to take the examples from")


def run_plot_examples(args: argparse.Namespace) -> int:
    """Run ``ser-model plot-examples``; one line on error, exit status 2."""
    try:
        path = plot_examples(args.data_dir, args.out, actor=args.actor)
    except SerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _save(fig, path: str | Path, *, dpi: int) -> Path:
    """Lay out, write (creating the folder) and close ``fig``; return the path written."""
    plt = _plt()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
