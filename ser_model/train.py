"""``ser-model train --config FILE.toml``: train a neural model and write a bundle.

The TOML file has the tables ``[data]``, ``[features]`` (FeatureSettings), ``[model]``
(ModelSettings), ``[train]`` (TrainSettings) and ``[augment]`` (ser_model.augment.Augmenter);
see ``ser_model/configs/ser-crnn.toml``. Training is seeded; early stopping and the kept checkpoint are
chosen by UAR on *validation speakers* held out of the training speakers (never on test
speakers). The bundle (per docs/CONTRACTS.md) gets ``metrics.json`` with the
speaker-independent cross-validation results that ``ser-model compare`` wrote (if found),
plus the validation-speaker score of this run; the TOML file is copied next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser_model.errors import ParameterError, SerError, check_keys, unknown_keys
from ser_model.features import FeatureSettings
from ser_model.labels import LABELS
from ser_model.neural import ModelSettings
from ser_model.tf_quiet import import_keras

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class DataSettings:
    """Which clips to train on."""

    dir: str = "../shared/datasets"
    """Folder holding the corpora (relative paths are taken from the current directory)."""
    corpora: tuple[str, ...] = ("ravdess", "tess")
    """Corpora to use (each read from ``dir/<corpus>`` when that folder exists)."""
    ravdess_actors: tuple[int, ...] = tuple(range(1, 21))
    """RAVDESS actors to use (21-24 are the held-out judges and are never here)."""
    limit_per_speaker: int = 0
    """Keep at most this many clips per speaker (0 = all); for smoke tests."""


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation and bundle settings."""

    name: str = "ser-crnn"
    """Bundle name; the bundle is written to ``models/<name>-v<version>``."""
    version: int = 1
    """Bundle version."""
    seed: int = 0
    """Seed for numpy, Python and Keras (weights, batches, augmentation, validation speakers)."""
    epochs: int = 30
    """Most epochs; early stopping may end sooner."""
    patience: int = 8
    """Stop after this many epochs without a better validation UAR."""
    keep: str = "best"
    """Weights to keep: 'best' (highest validation-speaker UAR) or 'last' (end of the cosine
    schedule, or where early stopping ended it; less noisy than a max over few speakers)."""
    batch_size: int = 32
    """Mini-batch size."""
    learning_rate: float = 2e-3
    """Peak learning rate of AdamW with cosine decay."""
    weight_decay: float = 1e-4
    """AdamW decoupled weight decay."""
    label_smoothing: float = 0.1
    """Label smoothing of the cross-entropy."""
    mixup_alpha: float = 0.0
    """Mixup Beta(alpha, alpha) within a batch (0 = off)."""
    class_weights: bool = True
    """Weight classes inversely to their training frequency."""
    max_frames: int = 192
    """Frames per model input (crop/zero-pad); 192 x 16 ms = 3.1 s."""
    augment_copies: int = 2
    """Augmented copies of each training clip; each epoch uses one random version per clip."""
    tess_fraction: float = 1.0
    """Fraction of the TESS training clips drawn (anew) each epoch; RAVDESS clips are always all used."""
    ensemble_with: tuple[str, ...] = ()
    """Further architectures (e.g. 'lstm', 'cnn1d', in their compare settings) trained on the same
    data; the bundle's model averages their probabilities with the main model's."""
    val_speakers: int = 2
    """RAVDESS training actors (half male, half female) held out for early stopping."""
    threads: int = 2
    """TensorFlow intra-op threads."""


@dataclass(frozen=True)
class TrainConfig:
    """A whole training configuration (one TOML file)."""

    data: DataSettings = field(default_factory=DataSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    augment: dict = field(default_factory=dict)
    """Augmenter settings (``Augmenter.from_dict``); empty = its defaults."""
    cv_results: str = "docs/results/results.json"
    """``compare`` results whose entry for this architecture goes into metrics.json."""

    def to_dict(self) -> dict:
        return {"data": _plain(asdict(self.data)), "features": self.features.to_dict(),
                "model": self.model.to_dict(), "train": asdict(self.train), "augment": dict(self.augment),
                "cv_results": self.cv_results}


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _section(cls, raw: dict, name: str):
    if not isinstance(raw, dict):
        raise ParameterError(f"[{name}] must be a table")
    check_keys(raw, cls, f"key(s) in [{name}]")
    vals = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    try:
        return cls(**vals)
    except TypeError as err:
        raise ParameterError(f"[{name}]: {err}") from err


def load_config(path: str | Path) -> TrainConfig:
    """Read a training TOML file; raises ParameterError (one line) for a bad file."""
    import tomllib

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ParameterError(f"{path}: cannot read config: {err.strerror or err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ParameterError(f"{path}: not valid TOML: {err}") from err
    if unknown := unknown_keys(raw, ("data", "features", "model", "train", "augment", "cv_results")):
        raise ParameterError(f"{path}: unknown table(s) {', '.join(unknown)}")
    try:
        features = FeatureSettings.from_dict(raw.get("features", {}))
        model = ModelSettings.from_dict({k: tuple(v) if isinstance(v, list) else v
                                         for k, v in raw.get("model", {}).items()})
    except TypeError as err:
        raise ParameterError(f"{path}: {err}") from err
    augment = raw.get("augment", {})
    from ser_model.augment import Augmenter

    Augmenter.from_dict(augment)  # validate now, not an hour into training
    return TrainConfig(data=_section(DataSettings, raw.get("data", {}), "data"), features=features, model=model,
                       train=_section(TrainSettings, raw.get("train", {}), "train"), augment=augment,
                       cv_results=str(raw.get("cv_results", TrainConfig.cv_results)))


# --------------------------------------------------------------------------- data


def select_clips(data: DataSettings, data_dir: str | Path | None = None):
    """The clips named by ``data``: per corpus, ``dir/<corpus>`` (or ``dir`` filtered)."""
    from ser_model.corpora import scan

    root = Path(data_dir if data_dir is not None else data.dir)
    if not root.is_dir():
        raise ParameterError(f"data folder not found: {root}")
    clips = []
    for corpus in data.corpora:
        sub = root / corpus
        found = scan(sub if sub.is_dir() else root).clips
        clips.extend(c for c in found if c.corpus == corpus)
    actors = {f"ravdess:{a:02d}" for a in data.ravdess_actors}
    clips = [c for c in clips if c.corpus != "ravdess" or c.speaker in actors]
    if data.limit_per_speaker > 0:  # round-robin over labels, so a small subset keeps every emotion
        by_speaker: dict[str, dict[str, list]] = {}
        for c in clips:
            by_speaker.setdefault(c.speaker, {}).setdefault(c.label, []).append(c)
        kept = []
        for groups in by_speaker.values():
            queues = [groups[lab] for lab in LABELS if lab in groups]
            take = []
            while len(take) < data.limit_per_speaker and any(queues):
                for q in queues:
                    if q and len(take) < data.limit_per_speaker:
                        take.append(q.pop(0))
            kept.extend(take)
        clips = sorted(kept, key=lambda c: str(c.path))
    if not clips:
        raise ParameterError(f"no clips of {', '.join(data.corpora)} found under {root}")
    return clips


@dataclass
class FeatureBank:
    """Clean and augmented frame features of the same clips (augmented: training use only)."""

    clean: Any
    augmented: list
    labels: np.ndarray
    speakers: np.ndarray


def build_feature_bank(clips, cfg: TrainConfig, *, cache_dir=None, progress=True) -> FeatureBank:
    from ser_model.augment import Augmenter
    from ser_model.dataset import (
        default_cache_dir,
        extract_frames,
        labels_of,
        speakers_of,
    )

    cache = default_cache_dir() if cache_dir is None else cache_dir
    aug = Augmenter.from_dict(cfg.augment)
    clean = extract_frames(clips, settings=cfg.features, cache_dir=cache, progress=progress)
    copies = [extract_frames(clips, settings=cfg.features, augment=aug, copy=k + 1, seed=cfg.train.seed,
                             cache_dir=cache, progress=progress) for k in range(cfg.train.augment_copies)]
    return FeatureBank(clean, copies, labels_of(clips), speakers_of(clips))


def validation_speakers(speakers: np.ndarray, n: int, seed: int) -> list[str]:
    """``n`` RAVDESS speakers (alternating male/female, i.e. odd/even actors) for early stopping.

    Falls back to any speakers when there are too few RAVDESS ones; never all speakers.
    """
    uniq = sorted(set(speakers.tolist()))
    rav = [s for s in uniq if s.startswith("ravdess:")]
    pool = rav if len(rav) > n else uniq
    if n <= 0 or len(pool) < 2:
        return []
    rng = np.random.default_rng(seed)
    male = [s for s in pool if s.startswith("ravdess:") and int(s.split(":")[1]) % 2 == 1]
    female = [s for s in pool if s not in male]
    male, female = list(rng.permutation(male)), list(rng.permutation(female))
    chosen = []
    while len(chosen) < min(n, len(pool) - 1) and (male or female):
        src = male if (len(chosen) % 2 == 0 and male) or not female else female
        chosen.append(str(src.pop()))
    return chosen


# --------------------------------------------------------------------------- fitting


def configure_tensorflow(threads: int):
    """Import TensorFlow quietly with ``threads`` intra-op threads (once per process)."""
    from ser_model.tf_quiet import import_tensorflow

    return import_tensorflow(threads)


@dataclass
class FitResult:
    model: Any
    mean: np.ndarray
    std: np.ndarray
    history: list[dict]
    best_epoch: int
    """The epoch whose weights were kept (1-based)."""
    val_uar: float | None
    """Validation-speaker UAR of the kept weights (None without validation speakers)."""
    seconds: float


def fit_neural(bank: FeatureBank, train_idx: np.ndarray, val_idx: np.ndarray, cfg: TrainConfig, *,
               model_settings: ModelSettings | None = None, epochs: int | None = None,
               progress=None, description: str = "training", checkpoint: Path | None = None) -> FitResult:
    """Train one neural model on ``train_idx`` clips, early-stopping on ``val_idx`` UAR.

    Normalisation statistics come from the clean training clips only. Each epoch draws one
    version (clean or an augmented copy) of every training clip, crops a random
    ``max_frames`` window, and shuffles. Returns the model with the best-validation weights
    (the last epoch's when there is no validation set).
    """
    configure_tensorflow(cfg.train.threads)
    keras = import_keras()
    from sklearn.metrics import balanced_accuracy_score

    from ser_model.dataset import batch_frames, fit_normalization
    from ser_model.neural import build_model

    ts = cfg.train
    ms = model_settings or cfg.model
    if ts.keep not in ("best", "last"):
        raise ParameterError(f"[train] keep must be 'best' or 'last', got {ts.keep!r}")
    n_epochs = epochs if epochs is not None else ts.epochs
    t0 = time.perf_counter()
    mean, std = fit_normalization(bank.clean, train_idx)
    versions = [bank.clean, *bank.augmented]
    labels = bank.labels
    is_tess = np.char.startswith(bank.speakers.astype(str), "tess:")
    if not 0.0 < ts.tess_fraction <= 1.0:
        raise ParameterError(f"tess_fraction must be in (0, 1], got {ts.tess_fraction}")
    keras.utils.set_random_seed(ts.seed)
    rng = np.random.default_rng(ts.seed)

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.on_epoch_end()

        def on_epoch_end(self):
            idx = train_idx
            if ts.tess_fraction < 1.0:
                tess = idx[is_tess[idx]]
                keep = rng.choice(tess, int(round(len(tess) * ts.tess_fraction)), replace=False)
                idx = np.concatenate([idx[~is_tess[idx]], keep])
            self.order = rng.permutation(idx)
            self.ver = rng.integers(0, len(versions), len(self.order))

        def __len__(self):
            return max(1, int(np.ceil(len(self.order) / ts.batch_size)))

        def __getitem__(self, b):
            sl = slice(b * ts.batch_size, (b + 1) * ts.batch_size)
            idx, ver = self.order[sl], self.ver[sl]
            x = batch_frames([versions[v][i] for i, v in zip(idx, ver)], mean, std, ts.max_frames, rng=rng)
            y = np.eye(len(LABELS), dtype=np.float32)[labels[idx]]
            if ts.mixup_alpha > 0:
                lam = rng.beta(ts.mixup_alpha, ts.mixup_alpha, (len(x), 1)).astype(np.float32)
                perm = rng.permutation(len(x))
                x = lam[:, :, None] * x + (1 - lam[:, :, None]) * x[perm]
                y = lam * y + (1 - lam) * y[perm]
            return x, y

    model = build_model((ts.max_frames, cfg.features.n_frame_features), len(LABELS), ms, seed=ts.seed)
    steps = len(Batches()) * n_epochs
    schedule = keras.optimizers.schedules.CosineDecay(ts.learning_rate, decay_steps=max(steps, 1), alpha=0.05)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=ts.weight_decay),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=ts.label_smoothing),
                  metrics=["accuracy"])
    class_weight = None
    if ts.class_weights:
        counts = np.bincount(labels[train_idx], minlength=len(LABELS)).astype(float)
        present = counts > 0
        class_weight = {i: float(len(train_idx) / (present.sum() * counts[i])) if counts[i] else 0.0
                        for i in range(len(LABELS))}
    x_val = batch_frames([bank.clean[i] for i in val_idx], mean, std, ts.max_frames) if len(val_idx) else None

    task = progress.add_task(description, total=n_epochs) if progress is not None else None
    state = {"best": -1.0, "weights": None, "epoch": -1, "history": []}

    class Monitor(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            entry = {"epoch": epoch + 1, "loss": float(logs.get("loss", np.nan)),
                     "accuracy": float(logs.get("accuracy", np.nan))}
            if x_val is not None:
                pred = self.model.predict(x_val, verbose=0, batch_size=256).argmax(1)
                entry["val_uar"] = float(balanced_accuracy_score(labels[val_idx], pred))
                score = entry["val_uar"]
            else:
                score = float(epoch)  # no validation speakers: keep the last epoch
            state["history"].append(entry)
            improved = score > state["best"]
            if improved:
                state.update(best=score, weights=self.model.get_weights() if ts.keep == "best" else None,
                             epoch=epoch + 1)
            if checkpoint is not None and (improved or ts.keep == "last"):
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                self.model.save(str(checkpoint))
            if task is not None:
                val = f" val UAR {entry['val_uar']:.3f} (best {state['best']:.3f})" if x_val is not None else ""
                progress.update(task, advance=1, description=f"{description}: loss {entry['loss']:.3f}{val}")
            if x_val is not None and epoch + 1 - state["epoch"] >= ts.patience:
                self.model.stop_training = True

    model.fit(Batches(), epochs=n_epochs, verbose=0, callbacks=[Monitor()], class_weight=class_weight)
    if ts.keep == "best" and state["weights"] is not None:
        model.set_weights(state["weights"])
    if task is not None:
        progress.update(task, completed=n_epochs)
    hist = state["history"]
    kept = state["epoch"] if ts.keep == "best" else len(hist)
    val_uar = hist[kept - 1].get("val_uar") if hist and kept >= 1 else None
    return FitResult(model=model, mean=mean, std=std, history=hist, best_epoch=kept, val_uar=val_uar,
                     seconds=time.perf_counter() - t0)


def average_models(models: Sequence[Any], input_shape: tuple[int, int]):
    """One Keras model whose output is the mean of ``models``' probabilities (an ensemble bundle)."""
    keras = import_keras()

    if len(models) == 1:
        return models[0]
    inp = keras.Input(shape=input_shape, name="frames")
    out = keras.layers.Average(name="probs")([m(inp) for m in models])
    return keras.Model(inp, out, name="ensemble")


def export_model(model):
    """A copy of ``model`` without optimizer state (smaller bundle, same weights)."""
    keras = import_keras()

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def predict_frames(model, bank_frames, indices, mean, std, max_frames: int) -> np.ndarray:
    """Class probabilities (n, n_labels) for clean clips, cropped/padded as the recognizer does."""
    from ser_model.dataset import batch_frames

    x = batch_frames([bank_frames[i] for i in indices], mean, std, max_frames)
    return model.predict(x, verbose=0, batch_size=256)


# --------------------------------------------------------------------------- bundle


def _progress_bar(enabled: bool = True):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not enabled)


def cv_name(cfg: TrainConfig) -> str:
    """The name of this recipe's row in compare's results: the architecture, or 'ensemble'."""
    return "ensemble" if cfg.train.ensemble_with else cfg.model.architecture


def _load_cv(cfg: TrainConfig, config_path: Path) -> dict | None:
    for base in (Path.cwd(), REPO_ROOT, config_path.parent):
        p = base / cfg.cv_results
        if p.is_file():
            data = json.loads(p.read_text(encoding="utf-8"))
            entry = data.get("models", {}).get(cv_name(cfg))
            if entry is not None:
                return {"source": str(cfg.cv_results), "protocol": data.get("protocol"),
                        "created": data.get("created"), "command": data.get("command"), **entry}
    return None


def model_card(cfg: TrainConfig, *, params: int, n_train: dict, metrics: dict, size_bytes: int | None = None) -> str:
    """MODEL_CARD.md text for a bundle trained with ``cfg``."""
    from ser_model.neural import model_settings_for

    cv = metrics.get("cross_validation")
    ms = cfg.model
    lines = [
        f"# {cfg.train.name} v{cfg.train.version}", "",
        "Speech emotion recognition from 16 kHz mono speech: one of "
        + ", ".join(f"`{x}`" for x in LABELS) + ".", "",
        "## Architecture", "",
        f"- `{ms.architecture}`: {params:,} parameters"
        + (f", {size_bytes / 1e6:.2f} MB weights file" if size_bytes else "") + ".",
    ]
    members = [ms.architecture, *cfg.train.ensemble_with]
    if len(members) > 1:
        lines[-1] = (f"- Ensemble of {len(members)} networks ({' + '.join(members)}) in one Keras model: the output is "
                     f"the mean of their class probabilities; {params:,} parameters in all"
                     + (f", {size_bytes / 1e6:.2f} MB weights file" if size_bytes else "") + ".")
    f = cfg.features
    lines.append(f"- Input: {cfg.train.max_frames} frames x {f.n_frame_features} features per clip: "
                 f"log-mel ({f.n_mels} bands, dB)" + (", MFCC deltas" if "mfcc_delta" in f.parts else "")
                 + (", MFCCs" if "mfcc" in f.parts else "")
                 + (", log energy / ZCR / centroid / roll-off / flatness" if "spectral" in f.parts else "")
                 + f" from one STFT ({f.n_fft}-point FFT, {f.win_length / f.sample_rate * 1000:.0f} ms window, "
                 f"{f.hop_length / f.sample_rate * 1000:.0f} ms hop); per-utterance normalisation "
                 f"'{f.utterance_norm}', then a global z-score from the training set; zero-padded to the frame count.")
    if "crnn" in members:
        cr = model_settings_for("crnn", ms)
        lines.append(f"- crnn: SpecAugment (training only) -> {len(cr.channels)} residual Conv1D blocks "
                     f"{list(cr.channels)} (kernel {cr.kernel_size}, batch norm, max-pool 2) -> "
                     + (f"BiGRU {cr.rnn_units}x2 -> " if cr.rnn_units else "")
                     + "attentive statistics pooling over unpadded frames -> dropout -> softmax.")
    if "cnn2d" in members:
        c2 = model_settings_for("cnn2d", ms)
        lines.append(f"- cnn2d: SpecAugment (training only) -> the {c2.image_bins} log-mel bands as a frames x bands "
                     f"image -> {len(c2.channels)} blocks of [Conv2D 3x3 -> batch norm -> ReLU] x {c2.block_convs} "
                     f"and max-pool 2x2, channels {list(c2.channels)} -> bands flattened per frame -> attentive "
                     "statistics pooling over unpadded frames -> dropout -> softmax.")
    if "lstm" in members:
        lines.append("- lstm (the seed design): 4-frame average -> masking -> LSTM 64 -> dropout -> LSTM 32 -> "
                     "dropout -> dense 64 -> softmax.")
    if "cnn1d" in members:
        lines.append("- cnn1d (the seed design): 4 x [Conv1D (64, 64, 128, 128; kernel 5) -> ReLU -> max-pool 2 -> "
                     "dropout] -> global average -> dense 64 -> dropout -> softmax.")
    t = cfg.train
    lines += [
        "", "## Training data", "",
        f"- {n_train.get('clips', '?')} clips from {', '.join(cfg.data.corpora)}"
        f" ({n_train.get('speakers', '?')} speakers; RAVDESS actors "
        f"{min(cfg.data.ravdess_actors):02d}-{max(cfg.data.ravdess_actors):02d}, speech only).",
        "- RAVDESS: Livingstone SR, Russo FA (2018), PLoS ONE 13(5): e0196391. Licence CC BY-NC-SA 4.0.",
        "- TESS: Pichora-Fuller MK, Dupuis K (2020), Toronto emotional speech set, Scholars Portal Dataverse, V1. "
        "Licence CC BY-NC-ND 4.0.",
        "- Label mapping: RAVDESS calm -> neutral, TESS ps (pleasant surprise) -> surprised.",
        "- Because of these licences the model is for research and non-commercial use.",
        f"- Recipe: seed {t.seed}, up to {t.epochs} epochs (AdamW, cosine LR {t.learning_rate}, label smoothing "
        f"{t.label_smoothing}, mixup {t.mixup_alpha}, class weights {t.class_weights}), {t.augment_copies} augmented "
        "copies per clip (speed, pitch, reverb, band-limit, noise, gain, shift); early stopping on UAR of "
        f"{t.val_speakers} held-out RAVDESS training actors.",
        "", "## Evaluation (speaker-independent)", "",
    ]
    if cv:
        lines += [
            "5-fold cross-validation over RAVDESS actors 01-20 (fold k tests actors 4k+1..4k+4, never seen in "
            "training; all of TESS is added to every training fold). Same architecture and recipe as this bundle.",
            "",
            "| metric | mean | std over folds |",
            "|---|---|---|",
            *[
                f"| {m} | {cv[m]['mean']:.3f} | {cv[m]['std']:.3f} |"
                for m in ("uar", "accuracy", "macro_f1")
                if m in cv
            ],
            "",
            f"Produced by `{cv.get('command', 'ser-model compare')}`; full table with the baselines "
            f"({', '.join(members)} alone, SVM, KNN, random forest, decision tree) in docs/results/results.md.",
            "",
            "For reference: the published lightweight state of the art on speaker-independent RAVDESS "
            "(ResLSTM-SA, 47k parameters) reports UAR 0.652, SVMs on pooled MFCC/chroma/mel statistics about 0.50; "
            "the target for this model was UAR >= 0.70, which it "
            f"{'meets' if cv['uar']['mean'] >= 0.70 else 'does not meet'}.",
        ]
    else:
        lines.append("No cross-validation results were found when this bundle was written "
                     "(run `ser-model compare`).")
    if metrics.get("validation"):
        v = metrics["validation"]
        lines += ["", f"Validation speakers of this run ({', '.join(v['speakers'])}): UAR {v['uar']:.3f} "
                  f"(used for early stopping, so slightly optimistic)."]
    lines += [
        "", "## Test data", "",
        "The shipped model is judged on RAVDESS actors 21-24 and a further corpus, none of which were used here.",
        "", "## Limitations", "",
        "- Acted, read speech in studio conditions (North-American English); spontaneous speech, other languages, "
        "accents and microphones will score lower.",
        "- TESS has only two (female) speakers, so most speaker variety comes from the RAVDESS actors "
        f"({20 - t.val_speakers} for training, {t.val_speakers} for validation).",
        "- Emotions are confused in pairs with similar arousal (neutral/sad, happy/surprised, fearful/sad).",
        "- Inputs longer than the max frames are truncated to their first "
        f"{t.max_frames * cfg.features.hop_length / cfg.features.sample_rate:.1f} s.",
        "- Do not use it for decisions about people: it is a conversational cue, not a diagnosis.",
    ]
    return "\n".join(lines) + "\n"


def main_train(config_path: str | Path, *, out_dir: str | Path | None = None, data_dir: str | Path | None = None,
               epochs: int | None = None, limit_per_speaker: int | None = None, cache_dir: str | Path | None = None,
               run_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Train the model of ``config_path`` and write its bundle; returns the bundle folder.

    ``out_dir``: bundle folder (default ``models/<name>-v<version>``); ``data_dir`` overrides
    ``[data] dir``; ``epochs`` overrides ``[train] epochs``; ``limit_per_speaker`` keeps at
    most that many clips per speaker (smoke tests); ``run_dir`` gets the checkpoint and
    history (default ``runs/<name>-v<version>``).
    """
    from dataclasses import replace

    from ser_model.bundle import save_bundle

    config_path = Path(config_path)
    cfg = load_config(config_path)
    if limit_per_speaker is not None:
        cfg = replace(cfg, data=replace(cfg.data, limit_per_speaker=limit_per_speaker))
    if epochs is not None:
        if epochs < 1:
            raise ParameterError(f"epochs must be >= 1, got {epochs}")
        cfg = replace(cfg, train=replace(cfg.train, epochs=epochs))
    t = cfg.train
    tag = f"{t.name}-v{t.version}"
    out = Path(out_dir) if out_dir is not None else Path("models") / tag
    run = Path(run_dir) if run_dir is not None else Path("runs") / tag
    clips = select_clips(cfg.data, data_dir)
    bank = build_feature_bank(clips, cfg, cache_dir=cache_dir, progress=progress)
    val_spk = validation_speakers(bank.speakers, t.val_speakers, t.seed)
    is_val = np.isin(bank.speakers, val_spk)
    train_idx, val_idx = np.where(~is_val)[0], np.where(is_val)[0]
    from ser_model.neural import model_settings_for

    members = [cfg.model.architecture, *t.ensemble_with]
    fits = []
    with _progress_bar(progress) as bar:
        for name in members:
            fits.append(fit_neural(bank, train_idx, val_idx, cfg, model_settings=model_settings_for(name, cfg.model),
                                   progress=bar, description=f"train {tag} ({name})",
                                   checkpoint=run / f"checkpoint-{name}.keras"))
    fit = fits[0]
    model = average_models([export_model(f.model) for f in fits], (t.max_frames, cfg.features.n_frame_features))
    val_uar = None
    if len(val_idx):
        from sklearn.metrics import balanced_accuracy_score

        probs = predict_frames(model, bank.clean, val_idx, fit.mean, fit.std, t.max_frames)
        val_uar = float(balanced_accuracy_score(bank.labels[val_idx], probs.argmax(1)))
    metrics: dict[str, Any] = {
        "protocol": "speaker-independent 5-fold CV over RAVDESS actors 01-20 (+ all TESS in training)",
        "cross_validation": _load_cv(cfg, config_path),
        "validation": ({"speakers": val_spk, "uar": val_uar, "keep": t.keep,
                        "members": {n: {"uar": f.val_uar, "kept_epoch": f.best_epoch} for n, f in zip(members, fits)}}
                       if val_uar is not None else None),
        "training": {"clips": len(train_idx), "validation_clips": len(val_idx),
                     "epochs_run": len(fit.history), "seconds": round(sum(f.seconds for f in fits), 1)},
    }
    n_train = {"clips": len(clips), "speakers": len(set(bank.speakers.tolist()))}
    metrics["n_train"] = n_train
    config = {
        "name": t.name, "version": t.version, "model_version": tag, "labels": list(LABELS),
        "sample_rate": cfg.features.sample_rate, "features": cfg.features.to_dict(),
        "normalization": {"mean": fit.mean.tolist(), "std": fit.std.tolist()},
        "input": {"kind": "frames", "max_frames": t.max_frames},
        "architecture": "+".join(members), "params": int(model.count_params()),
        "training": cfg.to_dict(),
    }
    card = model_card(cfg, params=int(model.count_params()), n_train=n_train, metrics=metrics)
    path = save_bundle(out, model=model, config=config, metrics=metrics, card=card)
    size = (path / "model.keras").stat().st_size
    (path / "MODEL_CARD.md").write_text(model_card(cfg, params=int(model.count_params()), n_train=n_train,
                                                   metrics=metrics, size_bytes=size), encoding="utf-8")
    shutil.copyfile(config_path, path / "train_config.toml")
    run.mkdir(parents=True, exist_ok=True)
    (run / "history.json").write_text(json.dumps(fit.history, indent=1) + "\n", encoding="utf-8")
    shutil.copyfile(config_path, run / "train_config.toml")
    return path


def refresh_report(config_path: str | Path, *, out_dir: str | Path | None = None) -> Path:
    """Rewrite a trained bundle's metrics.json ``cross_validation`` and MODEL_CARD.md from the
    current ``compare`` results (``cv_results`` of the config), without retraining. The weights
    and config.json are untouched, so the SHA-256 check still holds."""
    from ser_model.bundle import load_bundle_config

    config_path = Path(config_path)
    cfg = load_config(config_path)
    out = Path(out_dir) if out_dir is not None else Path("models") / f"{cfg.train.name}-v{cfg.train.version}"
    config = load_bundle_config(out)
    metrics_path = out / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    metrics["cross_validation"] = _load_cv(cfg, config_path)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    size = (out / config["weights"]).stat().st_size
    n_train = metrics.get("n_train", {})
    card = model_card(cfg, params=int(config.get("params", 0)), n_train=n_train, metrics=metrics, size_bytes=size)
    (out / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``ser-model train``."""
    parser.add_argument("--config", required=True, help="training TOML file (e.g. ser_model/configs/ser-crnn.toml)")
    from ser_model.outpaths import check_output_dir

    parser.add_argument("--out", dest="out_dir", default=None, type=check_output_dir,
        help="bundle folder (default models/<name>-v<version>)")
    parser.add_argument("--data", dest="data_dir", default=None, help="corpora folder (overrides [data] dir)")
    parser.add_argument("--epochs", type=int, default=None, help="override [train] epochs")
    parser.add_argument("--limit-per-speaker", type=int, default=None, help="at most N clips per speaker (smoke tests)")
    parser.add_argument(
        "--cache", dest="cache_dir", default=None, type=check_output_dir,
        help="feature cache folder (default .cache/features)"
    )
    parser.add_argument("--run-dir", default=None, type=check_output_dir,
        help="checkpoint/history folder (default runs/<name>-v<version>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--no-cv", action="store_true",
                        help="ser-v3 recipes: train the final head only, without the cross-validation")
    parser.add_argument("--results-dir", default=None, type=check_output_dir,
                        help="ser-v3 recipes: also write held-out probabilities and the reliability diagram here")
    parser.add_argument("--refresh-report", action="store_true",
                        help="do not train: update the existing bundle's metrics.json and MODEL_CARD.md "
                             "from the latest compare results")


def run(args: argparse.Namespace) -> int:
    """Run ``ser-model train`` from parsed arguments; prints one line and returns 2 on bad input."""
    try:
        if getattr(args, "refresh_report", False):
            path = refresh_report(args.config, out_dir=args.out_dir)
            print(f"updated {path}")
            return 0
        from ser_model import train_v3

        if train_v3.is_v3_config(args.config):
            cache = args.cache_dir or os.environ.get("SER_V3_CACHE") or ".cache/features-v3"
            path = train_v3.main_train(args.config, out_dir=args.out_dir, data_dir=args.data_dir, cache_dir=cache,
                                       cv=not getattr(args, "no_cv", False), results_dir=getattr(args, "results_dir",
                                                                                                 None))
            print(f"wrote {path}")
            return 0
        path = main_train(args.config, out_dir=args.out_dir, data_dir=args.data_dir, epochs=args.epochs,
                          limit_per_speaker=args.limit_per_speaker, cache_dir=args.cache_dir, run_dir=args.run_dir,
                          progress=not args.no_progress)
    except (SerError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ser-model train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
