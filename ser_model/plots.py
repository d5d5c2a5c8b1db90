"""Figures: normalised confusion matrix, training curves, per-class F1, and ``plot-examples``
(waveform + log-mel spectrogram of one clip per emotion). Matplotlib (Agg) is imported lazily.
"""

from __future__ import annotations

import argparse
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
    if not clips:
        raise SerError(f"no RAVDESS or TESS clips under {data_dir}")
    if actor is not None:
        actors = sorted({int(c.speaker.split(":")[1]) for c in clips
                         if c.corpus == "ravdess" and c.speaker.split(":")[1].isdigit()})
        clips = [c for c in clips if c.speaker == f"ravdess:{actor:02d}"]
        if not clips:
            found = (f"actors found: {_ranges(actors)}" if actors else "no RAVDESS actor found there")
            raise SerError(f"no clips of RAVDESS actor {actor} under {data_dir} ({found})")
    chosen = {}
    for c in sorted(clips, key=lambda c: (c.corpus != "ravdess", "-02-" not in c.path.name, str(c.path))):
        chosen.setdefault(c.label, c)
    settings = FeatureSettings(parts=("logmel",), utterance_norm="none")
    plt = _plt()
    rows = [lab for lab in LABELS if lab in chosen]
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 1.9 * len(rows)), squeeze=False)
    audio = {lab: load_audio(chosen[lab].path, sample_rate=settings.sample_rate) for lab in rows}
    mels = {lab: frame_features(audio[lab], settings=settings) for lab in rows}
    # One dB scale for every row, so the spectrograms of two emotions compare by colour.
    vmin = min(float(m.min()) for m in mels.values())
    vmax = max(float(m.max()) for m in mels.values())
    for r, lab in enumerate(rows):
        clip = chosen[lab]
        y = audio[lab]
        t = np.arange(len(y)) / settings.sample_rate
        axes[r, 0].plot(t, y, lw=0.4)
        axes[r, 0].set_ylabel(lab)
        axes[r, 0].set_xlim(0, t[-1] if len(t) else 1)
        axes[r, 0].set_title(f"{clip.path.name} ({clip.speaker})", fontsize=8)
        mel = mels[lab]
        secs = len(mel) * settings.hop_length / settings.sample_rate
        im = axes[r, 1].imshow(mel.T, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                               extent=(0, secs, 0, settings.n_mels))
        axes[r, 1].set_ylabel("mel band")
        fig.colorbar(im, ax=axes[r, 1], pad=0.01, fraction=0.04).set_label("dB", fontsize=8)
    axes[-1, 0].set_xlabel("seconds")
    axes[-1, 1].set_xlabel("seconds")
    fig.suptitle("waveform and log-mel spectrogram (dB) per emotion")
    out = Path(out)
    from ser_model.outpaths import PLOT_SUFFIXES

    return _save(fig, out if out.suffix.lower() in PLOT_SUFFIXES else out / "examples.png", dpi=72)


def _ranges(numbers: Sequence[int]) -> str:
    """``1-20, 23`` for [1, 2, ..., 20, 23]."""
    out: list[str] = []
    for n in sorted(numbers):
        if out and n == int(out[-1].split("-")[-1]) + 1:
            out[-1] = f"{out[-1].split('-')[0]}-{n:02d}"
        else:
            out.append(f"{n:02d}")
    return ", ".join(out)


def add_plot_examples_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``ser-model plot-examples DIR``."""
    parser.add_argument("data_dir", help="corpora folder (e.g. ../shared/datasets)")
    from ser_model.outpaths import PLOT_SUFFIXES, check_output_file_or_dir

    parser.add_argument("--out", default="examples.png", type=check_output_file_or_dir(PLOT_SUFFIXES),
                        help="output .png (.pdf, .svg, ...) file, or a folder that gets examples.png "
                             "(default: examples.png in the current folder)")
    parser.add_argument("--actor", type=int, default=None, help="RAVDESS actor to take the examples from")


def run_plot_examples(args: argparse.Namespace) -> int:
    """Run ``ser-model plot-examples``; prints the absolute path written. Errors are SerError,
    reported by the command line as one ``ser-model: error:`` line (exit status 1)."""
    path = plot_examples(args.data_dir, args.out, actor=args.actor)
    print(f"wrote {path.resolve()}")
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
