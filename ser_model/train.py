"""``ser-model train --config FILE.toml``: train the networks of a recipe and write a bundle.

The TOML file is a :class:`ser_model.recipe.Recipe` (see ``ser_model/configs/ser-crnn.toml``):
every ``[[members]]`` network is trained on the same clips and the bundle's model averages
their probabilities. Training is seeded; early stopping and the kept checkpoint are chosen by
UAR on *validation speakers* held out of the training speakers (never on test speakers). The
bundle (per docs/CONTRACTS.md) gets ``metrics.json`` with the speaker-independent
cross-validation results that ``ser-model compare`` wrote (if found), plus the
validation-speaker score of this run; the recipe is stored whole, in ``config.json["training"]``
and as ``recipe.toml``, so ``ser-model train --config models/<bundle>/recipe.toml`` retrains it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ser_model.errors import ParameterError, SerError
from ser_model.labels import LABELS
from ser_model.neural import ModelSettings
from ser_model.recipe import RECIPE_FILE, DataSettings, Recipe, load_recipe, recipe_text
from ser_model.tf_quiet import import_keras

REPO_ROOT = Path(__file__).resolve().parents[1]


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


def build_feature_bank(clips, cfg: Recipe, *, cache_dir=None, progress=True) -> FeatureBank:
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


def fit_neural(bank: FeatureBank, train_idx: np.ndarray, val_idx: np.ndarray, cfg: Recipe, *,
               model_settings: ModelSettings | None = None, epochs: int | None = None,
               progress=None, description: str = "training", checkpoint: Path | None = None) -> FitResult:
    """Train one neural model (``model_settings``, default the recipe's main member) on
    ``train_idx`` clips, early-stopping on ``val_idx`` UAR.

    Normalisation statistics come from the clean training clips only. Each epoch draws one
    version (clean or an augmented copy) of every training clip, crops a random
    ``max_frames`` window, and shuffles (:class:`ser_model.fit_loop.EpochBatches`). Returns
    the model with the kept weights (``keep``: the best validation epoch's, or the last's).
    """
    configure_tensorflow(cfg.train.threads)
    from ser_model.dataset import batch_frames, fit_normalization
    from ser_model.fit_loop import EpochBatches, UarMonitor
    from ser_model.neural import build_model

    ts = cfg.train
    if ts.keep not in ("best", "last"):
        raise ParameterError(f"[train] keep must be 'best' or 'last', got {ts.keep!r}")
    if not 0.0 < ts.tess_fraction <= 1.0:
        raise ParameterError(f"tess_fraction must be in (0, 1], got {ts.tess_fraction}")
    n_epochs = epochs if epochs is not None else ts.epochs
    t0 = time.perf_counter()
    mean, std = fit_normalization(bank.clean, train_idx)
    keras = import_keras()
    keras.utils.set_random_seed(ts.seed)
    rng = np.random.default_rng(ts.seed)

    def batches() -> EpochBatches:
        return EpochBatches([bank.clean, *bank.augmented], bank.labels, bank.speakers, train_idx, mean, std, ts, rng)

    model = build_model((ts.max_frames, cfg.features.n_frame_features), len(LABELS), model_settings or cfg.model,
                        seed=ts.seed)
    steps = len(batches()) * n_epochs  # (this draws one epoch's order from rng, as training always has)
    schedule = keras.optimizers.schedules.CosineDecay(ts.learning_rate, decay_steps=max(steps, 1), alpha=0.05)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=ts.weight_decay),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=ts.label_smoothing),
                  metrics=["accuracy"])
    x_val = batch_frames([bank.clean[i] for i in val_idx], mean, std, ts.max_frames) if len(val_idx) else None
    monitor = UarMonitor(x_val, bank.labels[val_idx], keep=ts.keep, patience=ts.patience, checkpoint=checkpoint,
                         progress=progress, description=description, n_epochs=n_epochs)
    model.fit(batches(), epochs=n_epochs, verbose=0, callbacks=[monitor],
              class_weight=_class_weights(bank.labels[train_idx]) if ts.class_weights else None)
    hist, kept = monitor.finish(model)
    val_uar = hist[kept - 1].get("val_uar") if hist and kept >= 1 else None
    return FitResult(model=model, mean=mean, std=std, history=hist, best_epoch=kept, val_uar=val_uar,
                     seconds=time.perf_counter() - t0)


def _class_weights(train_labels: np.ndarray) -> dict[int, float]:
    """Keras class weights inversely proportional to each class's training frequency (0 when absent)."""
    counts = np.bincount(train_labels, minlength=len(LABELS)).astype(float)
    present = counts > 0
    return {i: float(len(train_labels) / (present.sum() * counts[i])) if counts[i] else 0.0
            for i in range(len(LABELS))}


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


def _load_cv(cfg: Recipe, config_path: Path) -> dict | None:
    for base in (Path.cwd(), REPO_ROOT, config_path.parent):
        p = base / cfg.cv_results
        if p.is_file():
            data = json.loads(p.read_text(encoding="utf-8"))
            entry = data.get("models", {}).get(cfg.cv_name())
            if entry is not None:
                return {"source": str(cfg.cv_results), "protocol": data.get("protocol"),
                        "created": data.get("created"), "command": data.get("command"), **entry}
    return None


def model_card(cfg: Recipe, *, params: int, n_train: dict, metrics: dict, size_bytes: int | None = None) -> str:
    """MODEL_CARD.md text for a bundle trained with ``cfg``: every statement about the networks and
    their training comes from the recipe, the numbers from ``metrics``."""
    lines = [
        f"# {cfg.train.name} v{cfg.train.version}", "",
        "Speech emotion recognition from 16 kHz mono speech: one of "
        + ", ".join(f"`{x}`" for x in LABELS) + ".", "",
        *_card_architecture(cfg, params, size_bytes),
        *_card_training(cfg, n_train),
        *_card_evaluation(cfg, metrics),
        *_card_limitations(cfg),
    ]
    return "\n".join(lines) + "\n"


def _card_architecture(cfg: Recipe, params: int, size_bytes: int | None) -> list[str]:
    from ser_model.neural import describe

    size = f", {size_bytes / 1e6:.2f} MB weights file" if size_bytes else ""
    members = cfg.member_names
    if cfg.is_ensemble:
        head = (f"- Ensemble of {len(members)} networks ({' + '.join(members)}) in one Keras model: the output is "
                f"the mean of their class probabilities; {params:,} parameters in all{size}.")
    else:
        head = f"- `{members[0]}`: {params:,} parameters{size}."
    f = cfg.features
    inputs = (f"- Input: {cfg.train.max_frames} frames x {f.n_frame_features} features per clip: "
              f"log-mel ({f.n_mels} bands, dB)" + (", MFCC deltas" if "mfcc_delta" in f.parts else "")
              + (", MFCCs" if "mfcc" in f.parts else "")
              + (", log energy / ZCR / centroid / roll-off / flatness" if "spectral" in f.parts else "")
              + f" from one STFT ({f.n_fft}-point FFT, {f.win_length / f.sample_rate * 1000:.0f} ms window, "
              f"{f.hop_length / f.sample_rate * 1000:.0f} ms hop); per-utterance normalisation "
              f"'{f.utterance_norm}', then a global z-score from the training set; zero-padded to the frame count.")
    return ["## Architecture", "", head, inputs, *(f"- {describe(m)}" for m in cfg.members)]


def _card_training(cfg: Recipe, n_train: dict) -> list[str]:
    t = cfg.train
    return [
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
    ]


def _card_evaluation(cfg: Recipe, metrics: dict) -> list[str]:
    cv = metrics.get("cross_validation")
    members = cfg.member_names
    lines = ["", "## Evaluation (speaker-independent)", ""]
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
    return lines


def _card_limitations(cfg: Recipe) -> list[str]:
    t = cfg.train
    return [
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


def main_train(config_path: str | Path, *, out_dir: str | Path | None = None, data_dir: str | Path | None = None,
               epochs: int | None = None, limit_per_speaker: int | None = None, cache_dir: str | Path | None = None,
               run_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Train the networks of the recipe ``config_path`` and write its bundle; returns the bundle folder.

    ``out_dir``: bundle folder (default ``models/<name>-v<version>``); ``data_dir`` overrides
    ``[data] dir``; ``epochs`` overrides ``[train] epochs``; ``limit_per_speaker`` keeps at
    most that many clips per speaker (smoke tests); ``run_dir`` gets the checkpoint and
    history (default ``runs/<name>-v<version>``).
    """
    config_path = Path(config_path)
    cfg = _with_overrides(load_recipe(config_path), epochs=epochs, limit_per_speaker=limit_per_speaker)
    stored = recipe_text(config_path)  # read now: the file (or its base) may change while this trains
    tag = f"{cfg.train.name}-v{cfg.train.version}"
    out = Path(out_dir) if out_dir is not None else Path("models") / tag
    run = Path(run_dir) if run_dir is not None else Path("runs") / tag
    clips = select_clips(cfg.data, data_dir)
    bank = build_feature_bank(clips, cfg, cache_dir=cache_dir, progress=progress)
    val_spk = validation_speakers(bank.speakers, cfg.train.val_speakers, cfg.train.seed)
    is_val = np.isin(bank.speakers, val_spk)
    train_idx, val_idx = np.where(~is_val)[0], np.where(is_val)[0]
    with _progress_bar(progress) as bar:
        fits = [fit_neural(bank, train_idx, val_idx, cfg, model_settings=member, progress=bar,
                           description=f"train {tag} ({member.architecture})",
                           checkpoint=run / f"checkpoint-{member.architecture}.keras") for member in cfg.members]
    model = average_models([export_model(f.model) for f in fits], (cfg.train.max_frames, cfg.features.n_frame_features))
    metrics = _train_metrics(cfg, config_path, model, bank, fits, train_idx, val_idx, val_spk,
                             n_train={"clips": len(clips), "speakers": len(set(bank.speakers.tolist()))})
    path = _write_bundle(out, cfg, stored, model, fits[0], metrics)
    run.mkdir(parents=True, exist_ok=True)
    (run / "history.json").write_text(json.dumps(fits[0].history, indent=1) + "\n", encoding="utf-8")
    (run / RECIPE_FILE).write_text(stored, encoding="utf-8")
    return path


def _with_overrides(cfg: Recipe, *, epochs: int | None, limit_per_speaker: int | None) -> Recipe:
    """``cfg`` with the command line's ``--epochs`` and ``--limit-per-speaker``, when given."""
    from dataclasses import replace

    if limit_per_speaker is not None:
        cfg = replace(cfg, data=replace(cfg.data, limit_per_speaker=limit_per_speaker))
    if epochs is not None:
        if epochs < 1:
            raise ParameterError(f"epochs must be >= 1, got {epochs}")
        cfg = replace(cfg, train=replace(cfg.train, epochs=epochs))
    return cfg


def _train_metrics(cfg: Recipe, config_path: Path, model, bank: FeatureBank, fits: list[FitResult],
                   train_idx: np.ndarray, val_idx: np.ndarray, val_spk: list[str], *, n_train: dict) -> dict[str, Any]:
    """metrics.json of a training run: the compare CV results, the ensemble's and each member's
    validation-speaker UAR, and the run's sizes and time."""
    fit = fits[0]
    val_uar = None
    if len(val_idx):
        from sklearn.metrics import balanced_accuracy_score

        probs = predict_frames(model, bank.clean, val_idx, fit.mean, fit.std, cfg.train.max_frames)
        val_uar = float(balanced_accuracy_score(bank.labels[val_idx], probs.argmax(1)))
    members = {n: {"uar": f.val_uar, "kept_epoch": f.best_epoch} for n, f in zip(cfg.member_names, fits)}
    return {
        "protocol": "speaker-independent 5-fold CV over RAVDESS actors 01-20 (+ all TESS in training)",
        "cross_validation": _load_cv(cfg, config_path),
        "validation": ({"speakers": val_spk, "uar": val_uar, "keep": cfg.train.keep, "members": members}
                       if val_uar is not None else None),
        "training": {"clips": len(train_idx), "validation_clips": len(val_idx),
                     "epochs_run": len(fit.history), "seconds": round(sum(f.seconds for f in fits), 1)},
        "n_train": n_train,
    }


def _write_bundle(out: Path, cfg: Recipe, recipe: str, model, fit: FitResult, metrics: dict) -> Path:
    """Save the bundle: weights, config.json (with the whole recipe in ``training``), metrics,
    the model card, and ``recipe`` (:func:`recipe_text` of the file, read when training
    started) as ``recipe.toml``."""
    from ser_model.bundle import save_bundle

    t = cfg.train
    params = int(model.count_params())
    config = {
        "name": t.name, "version": t.version, "model_version": f"{t.name}-v{t.version}", "labels": list(LABELS),
        "sample_rate": cfg.features.sample_rate, "features": cfg.features.to_dict(),
        "normalization": {"mean": fit.mean.tolist(), "std": fit.std.tolist()},
        "input": {"kind": "frames", "max_frames": t.max_frames},
        "architecture": "+".join(cfg.member_names), "params": params,
        "training": cfg.to_dict(),
    }
    n_train = metrics["n_train"]
    card = model_card(cfg, params=params, n_train=n_train, metrics=metrics)
    path = save_bundle(out, model=model, config=config, metrics=metrics, card=card)
    size = (path / "model.keras").stat().st_size
    (path / "MODEL_CARD.md").write_text(model_card(cfg, params=params, n_train=n_train, metrics=metrics,
                                                   size_bytes=size), encoding="utf-8")
    (path / RECIPE_FILE).write_text(recipe, encoding="utf-8")
    return path


def refresh_report(config_path: str | Path, *, out_dir: str | Path | None = None) -> Path:
    """Rewrite a trained bundle's metadata from its recipe and the current ``compare`` results
    (``cv_results`` of the recipe), without retraining: metrics.json ``cross_validation``,
    MODEL_CARD.md, config.json ``training`` (the whole recipe) and ``recipe.toml``. The recipe
    must be the one the bundle was trained from (:func:`check_trained_from`). The weights are
    untouched, so the SHA-256 check still holds."""
    from ser_model.bundle import load_bundle_config, update_metadata

    config_path = Path(config_path)
    cfg = load_recipe(config_path)
    out = Path(out_dir) if out_dir is not None else Path("models") / f"{cfg.train.name}-v{cfg.train.version}"
    config = load_bundle_config(out)
    check_trained_from(cfg, config.get("training", {}), where=str(out))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    metrics["cross_validation"] = _load_cv(cfg, config_path)
    size = (out / config["weights"]).stat().st_size
    card = model_card(cfg, params=int(config.get("params", 0)), n_train=metrics.get("n_train", {}), metrics=metrics,
                      size_bytes=size)
    return update_metadata(out, config={**config, "training": _recorded(cfg, config.get("training", {}))},
                           metrics=metrics, card=card, files={RECIPE_FILE: recipe_text(config_path)})


def _recorded(cfg: Recipe, training: dict) -> dict:
    """The recipe to record in config.json: ``cfg`` with the run's command-line overrides
    (``--epochs``, ``--limit-per-speaker``) that the bundle recorded."""
    d = cfg.to_dict()
    d["data"]["limit_per_speaker"] = training.get("data", {}).get("limit_per_speaker", d["data"]["limit_per_speaker"])
    d["train"]["epochs"] = training.get("train", {}).get("epochs", d["train"]["epochs"])
    return d


def check_trained_from(cfg: Recipe, training: dict, *, where: str) -> None:
    """ParameterError unless ``training`` (a bundle's config.json ``training``) records ``cfg``,
    up to the command-line overrides. Bundles written before recipes had ``[[members]]``
    recorded the main member as ``model`` and the others' names in ``train.ensemble_with``;
    for those, the other members' settings cannot be checked and are taken from the recipe."""
    rec = _recorded(cfg, training)
    old = json.loads(json.dumps(training))
    if "model" in old and "members" not in old:  # the format before [[members]]
        trained = [old["model"]["architecture"], *old["train"].pop("ensemble_with", [])]
        if trained != cfg.member_names:
            raise ParameterError(f"{where} was trained with members {'+'.join(trained)}, "
                                 f"the recipe has {'+'.join(cfg.member_names)}")
        old["members"] = [old.pop("model"), *rec["members"][1:]]
    diff = sorted(k for k in set(old) | set(rec) if k != "cv_results" and old.get(k) != rec.get(k))
    if diff:  # cv_results only says where the report's numbers are read
        raise ParameterError(f"{where} was not trained from this recipe (differs in {', '.join(diff)})")


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
        from ser_model.recipe import HeadRecipe, read_recipe

        if isinstance(read_recipe(args.config), HeadRecipe):
            from ser_model import train_v3

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
