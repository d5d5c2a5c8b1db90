"""Training and speaker-independent evaluation of ser-v3 heads.

``ser-model train --config ser_model/configs/ser-v3.toml`` (a TOML with ``[v3]``) runs
:func:`main_train`: utterance vectors of every clip (Whisper encoder + prosody, cached per clip),
the 5-fold RAVDESS-actor cross-validation in both protocols (unadapted; each test clip with a
profile of ``adapt_k`` other clips of its speaker), the RAVDESS -> TESS proxy in both
protocols, the false-alarm table, then the final head on all clips, written as a bundle.

Heads: ``mlp`` (Keras: Dropout, Dense relu, Dropout, Dense softmax) and ``logreg``
(scikit-learn logistic regression, exported as one Keras Dense softmax layer). Either is saved
as ``model.keras`` and run by the NumPy runtime at inference.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ser_model import v3
from ser_model.errors import ParameterError
from ser_model.labels import LABELS
from ser_model.recipe import HeadRecipe, load_head_recipe
from ser_model.v3 import tempered

NEGATIVE = ("sad", "angry", "fearful", "disgust")


@dataclass
class Bank:
    vectors: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray
    corpora: np.ndarray
    paths: list[str]

    def take(self, rows: np.ndarray) -> Bank:
        """The bank's rows ``rows`` (a boolean mask or indices)."""
        idx = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        return Bank(self.vectors[idx], self.labels[idx], self.speakers[idx], self.corpora[idx],
                    [self.paths[i] for i in idx])


def build_bank(clips: Sequence[Any], *, cache_dir: str | Path | None, threads: int = 2,
               progress: bool = False, speed: float = 1.0, channel: int = 0, layers: tuple[int, ...] = ()) -> Bank:
    """Utterance vectors of ``clips`` (corpora.Clip), each clip's features extracted once (cached).

    ``speed`` != 1: of training copies played that many times faster, each copy a speaker of
    its own (``ravdess:01@0.95``: the perturbation moves the voice's pitch, so the speaker's
    statistics). ``channel`` = i > 0: of training copies through each speaker's simulated
    device i (:class:`ser_model.channel.ChannelCopy`), each a speaker of its own
    (``ravdess:01@ch1``). ``layers``: the encoder layers the vectors pool
    (``encoder_features.encoder_frames``; () the final output)."""
    from ser_model.channel import ChannelCopy, channel_speaker
    from ser_model.encoder_features import clip_features, pool
    from ser_model.whisper_model import shared_whisper

    if speed != 1.0 and channel:
        raise ParameterError("a training copy is either faster or through another channel, not both")
    model = shared_whisper(cpu_threads=threads)
    vecs = []
    what = "features" if speed == 1.0 else f"features at speed {speed:g}"
    if channel:
        what = f"features through channel {channel}"
    for i, clip in enumerate(clips):
        ch = ChannelCopy(channel, clip.speaker) if channel else None
        frames, pros = clip_features(model, clip.path, cache_dir=cache_dir, speed=speed, channel=ch, layers=layers)
        vecs.append(pool(frames.astype(np.float32), pros))
        if progress and i % 500 == 499:
            print(f"  {what} {i + 1}/{len(clips)}", flush=True)
    suffix = "" if speed == 1.0 else f"@{speed:g}"
    return Bank(
        vectors=np.stack(vecs).astype(np.float64),
        labels=np.array([LABELS.index(c.label) for c in clips]),
        speakers=np.array([channel_speaker(c.speaker, channel) if channel else c.speaker + suffix for c in clips]),
        corpora=np.array([c.corpus for c in clips]),
        paths=[str(c.path) for c in clips],
    )


def _concat(banks: Sequence[Bank]) -> Bank | None:
    if not banks:
        return None
    return Bank(np.concatenate([b.vectors for b in banks]), np.concatenate([b.labels for b in banks]),
                np.concatenate([b.speakers for b in banks]), np.concatenate([b.corpora for b in banks]),
                [p for b in banks for p in b.paths])


def training_copies(clips: Sequence[Any], s: HeadRecipe, *, cache_dir: str | Path | None,
                    progress: bool = False) -> Bank | None:
    """The recipe's training copies of ``clips``: each of its ``speed_corpora`` clips at each
    of the ``speed_factors``, each of its ``channel_corpora`` clips through each of the
    ``channel_copies`` simulated devices; None when it asks for none."""
    kinds = ([(s.speed_corpora, {"speed": f}) for f in s.speed_factors]
             + [(s.channel_corpora, {"channel": i}) for i in range(1, s.channel_copies + 1)])
    banks = []
    for corpora, kind in kinds:
        chosen = [c for c in clips if c.corpus in corpora]
        if chosen:
            banks.append(build_bank(chosen, cache_dir=cache_dir, threads=s.threads, progress=progress,
                                    layers=s.encoder_layers, **kind))
    return _concat(banks)


def original_speaker(speakers: np.ndarray) -> np.ndarray:
    """The speaker a training copy was made from (``ravdess:01@0.95``, ``ravdess:01@ch1`` ->
    ``ravdess:01``)."""
    return np.char.partition(np.asarray(speakers, dtype=str), "@")[:, 0]


def training_rows(bank: Bank, train: np.ndarray, copies: Bank | None = None) -> Bank:
    """The bank's rows ``train`` (a boolean mask), plus the copies of those speakers' clips."""
    rows = bank.take(train)
    if copies is None:
        return rows
    extra = copies.take(np.isin(original_speaker(copies.speakers), rows.speakers))
    return Bank(np.concatenate([rows.vectors, extra.vectors]), np.concatenate([rows.labels, extra.labels]),
                np.concatenate([rows.speakers, extra.speakers]), np.concatenate([rows.corpora, extra.corpora]),
                rows.paths + extra.paths)


def unique_clips(clips: Sequence[Any]) -> list[Any]:
    """RAVDESS and TESS clips, one per file name stem (a copy of a clip in another format, such as
    the loader-test originals, would otherwise sit in training and test at once)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for c in clips:
        key = (c.corpus, Path(c.path).stem)
        if c.corpus in ("ravdess", "tess") and key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _ks(s: HeadRecipe) -> tuple[int | None, ...]:
    return tuple(None if k < 0 else int(k) for k in s.train_ks)


@dataclass
class Head:
    kind: str
    model: Any  # keras Model
    norm_mean: np.ndarray
    norm_std: np.ndarray
    prior: Any

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(x, verbose=0, batch_size=1024), dtype=np.float64)


def _keras():
    from ser_model.tf_quiet import import_keras

    return import_keras()


def _dense_softmax(coef: np.ndarray, intercept: np.ndarray):
    keras = _keras()
    inp = keras.Input(shape=(coef.shape[1],))
    layer = keras.layers.Dense(coef.shape[0], activation="softmax")
    model = keras.Model(inp, layer(inp))
    layer.set_weights([coef.T.astype(np.float32), intercept.astype(np.float32)])
    return model


def fit_head(vectors: np.ndarray, labels: np.ndarray, speakers: np.ndarray, corpora: np.ndarray,
             s: HeadRecipe) -> Head:
    """Train one head on these clips (all their speakers adapt from their own other clips)."""
    norm_mean, norm_std, prior = v3.fit_prior(vectors, speakers, strength=s.strength)
    x, y = v3.training_inputs(vectors, speakers, labels, norm_mean=norm_mean, norm_std=norm_std, prior=prior,
                              seed=s.seed, ks=_ks(s))
    reps = len(_ks(s))
    w_corpus = np.where(np.asarray(corpora) == "ravdess", s.ravdess_weight, 1.0)
    w = np.tile(w_corpus, reps)
    counts = np.bincount(y, weights=w, minlength=len(LABELS))
    cw = np.where(counts > 0, counts.sum() / (len(LABELS) * np.maximum(counts, 1e-9)), 0.0)
    w = w * cw[y]
    w = w / w.mean()
    if s.head == "logreg":
        from sklearn.linear_model import LogisticRegression

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegression(C=s.c, max_iter=300)
            clf.fit(x, y, sample_weight=w)
        coef = np.zeros((len(LABELS), x.shape[1]))
        inter = np.full(len(LABELS), -30.0)
        coef[clf.classes_] = clf.coef_
        inter[clf.classes_] = clf.intercept_
        return Head("logreg", _dense_softmax(coef, inter), norm_mean, norm_std, prior)
    keras = _keras()
    keras.utils.set_random_seed(s.seed)
    reg = keras.regularizers.L2(s.l2)
    inp = keras.Input(shape=(x.shape[1],))
    h = keras.layers.Dropout(s.dropout_in)(inp)
    h = keras.layers.Dense(s.hidden, activation="relu", kernel_regularizer=reg)(h)
    h = keras.layers.Dropout(s.dropout)(h)
    out = keras.layers.Dense(len(LABELS), activation="softmax", kernel_regularizer=reg)(h)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=s.lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, sample_weight=w, epochs=s.epochs, batch_size=s.batch_size, verbose=0, shuffle=True)
    # the same layers in a model never compiled: a bundle saves no optimizer state (Adam's two
    # moments would triple model.keras: 19 MB instead of 6 MB for the 4-layer features)
    return Head("mlp", keras.Model(inp, out), norm_mean, norm_std, prior)


def fit_rows(rows: Bank, s: HeadRecipe) -> Head:
    """:func:`fit_head` on a bank's rows."""
    return fit_head(rows.vectors, rows.labels, rows.speakers, rows.corpora, s)


def score_protocols(head: Head, vectors: np.ndarray, speakers: np.ndarray, *, adapt_k: int,
                    seed: int) -> dict[str, np.ndarray]:
    """Held-out probabilities: {"unadapted": (n, 7), "adapted": (n, 7)}; profiles from other
    test clips of the same speaker only (labels never read)."""
    rng = np.random.default_rng(seed + 1000)
    out = {}
    for name, k in (("unadapted", 0), ("adapted", adapt_k)):
        x, _ = v3.adapted_inputs(vectors, speakers, k=k, norm_mean=head.norm_mean, norm_std=head.norm_std,
                                 prior=head.prior, rng=rng)
        out[name] = head.predict(x)
    return out


def metrics(y: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, recall_score

    pred = probs.argmax(1)
    present = sorted(set(y.tolist()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = recall_score(y, pred, labels=range(len(LABELS)), average=None, zero_division=0)
        return {
            "n": int(len(y)),
            "uar": float(balanced_accuracy_score(y, pred)),
            "accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)),
            "recall": {LABELS[i]: round(float(rec[i]), 4) for i in present},
            "confusion": confusion_matrix(y, pred, labels=range(len(LABELS))).tolist(),
        }


def false_alarms(y: np.ndarray, probs: np.ndarray, min_confidence: float) -> float:
    """Fraction of neutral clips labelled negative with confidence >= min_confidence."""
    neutral = y == LABELS.index("neutral")
    if not neutral.any():
        return float("nan")
    pred = probs[neutral].argmax(1)
    conf = probs[neutral].max(1)
    neg = np.isin(pred, [LABELS.index(n) for n in NEGATIVE])
    return float(np.mean(neg & (conf >= min_confidence)))


def cross_validate(bank: Bank, s: HeadRecipe, *, copies: Bank | None = None, log=print) -> dict[str, Any]:
    """5-fold RAVDESS-actor CV (TESS always in training), both protocols; held-out probabilities.
    ``copies`` (:func:`training_copies`) join the folds that train their original's speaker."""
    from ser_model.compare import make_folds

    rav = bank.corpora == "ravdess"
    folds = make_folds(bank.speakers[rav], s.n_folds)
    probs = {"unadapted": np.zeros((len(bank.labels), len(LABELS))), "adapted": np.zeros((len(bank.labels),
                                                                                          len(LABELS)))}
    tested = np.zeros(len(bank.labels), dtype=bool)
    fold_uars: dict[str, list[float]] = {"unadapted": [], "adapted": []}
    train_corp = np.isin(bank.corpora, s.corpora)
    for i, actors in enumerate(folds):
        t0 = time.time()
        test = np.isin(bank.speakers, actors)
        train = train_corp & ~test
        head = fit_rows(training_rows(bank, train, copies), s)
        p = score_protocols(head, bank.vectors[test], bank.speakers[test], adapt_k=s.adapt_k, seed=s.seed + i)
        for k, v in p.items():
            probs[k][test] = v
            fold_uars[k].append(metrics(bank.labels[test], v)["uar"])
        tested |= test
        log(f"  fold {i + 1}/{len(folds)} ({', '.join(actors)}): UAR {fold_uars['unadapted'][-1]:.3f} unadapted, "
            f"{fold_uars['adapted'][-1]:.3f} adapted K={s.adapt_k} ({time.time() - t0:.0f} s)")
    y = bank.labels[tested]
    res: dict[str, Any] = {"folds": [list(f) for f in folds]}
    for k in probs:
        m = metrics(y, probs[k][tested])
        m["uar_folds"] = [round(u, 4) for u in fold_uars[k]]
        m["uar_fold_std"] = float(np.std(fold_uars[k]))
        res[k] = m
    res["_probs"] = {k: v[tested] for k, v in probs.items()}
    res["_y"] = y
    return res


def cross_corpus(bank: Bank, s: HeadRecipe, *, copies: Bank | None = None, temperature: float = 1.0,
                 min_confidence: float | None = None) -> dict[str, Any]:
    """Train on RAVDESS only (and its copies), score every TESS clip, both protocols; with
    ``min_confidence``, also the fraction of TESS's neutral clips called sad/angry/fearful/disgust
    with (``temperature``-scaled) confidence at or above it (``neutral_called_negative``)."""
    rav = bank.corpora == "ravdess"
    tess = bank.corpora == "tess"
    head = fit_rows(training_rows(bank, rav, copies), s)
    p = score_protocols(head, bank.vectors[tess], bank.speakers[tess], adapt_k=s.adapt_k, seed=s.seed)
    out = {k: metrics(bank.labels[tess], v) for k, v in p.items()}
    if min_confidence is not None:  # what a new voice on a new corpus meets: presumed negative feelings
        for k, v in p.items():
            out[k]["neutral_called_negative"] = round(false_alarms(bank.labels[tess], tempered(v, temperature),
                                                                   min_confidence), 4)
    return out


def fit_temperature(y: np.ndarray, probs: dict[str, np.ndarray]) -> float:
    """The temperature (grid 1..6, step 0.25) minimising the held-out NLL summed over both protocols."""
    grid = np.arange(1.0, 6.01, 0.25)

    def nll(t: float) -> float:
        return sum(-np.mean(np.log(np.clip(tempered(p, t)[np.arange(len(y)), y], 1e-12, 1.0))) for p in probs.values())

    return float(grid[int(np.argmin([nll(t) for t in grid]))])


def false_alarm_table(y: np.ndarray, probs: dict[str, np.ndarray]) -> dict[str, Any]:
    grid = [round(float(t), 2) for t in np.arange(0.30, 0.96, 0.05)]
    return {k: {str(t): round(false_alarms(y, v, t), 4) for t in grid} for k, v in probs.items()}


def choose_min_confidence(table: dict[str, Any], target: float = 0.10) -> float:
    """The lowest threshold whose false-alarm rate is <= target in both protocols."""
    grid = sorted(float(t) for t in table["unadapted"])
    for t in grid:
        if all(table[k][str(round(t, 2))] <= target for k in table):
            return round(t, 2)
    return grid[-1]


def _strip(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if not k.startswith("_")}


def main_train(config_path: str | Path, *, out_dir: str | Path | None = None, data_dir: str | Path | None = None,
               cache_dir: str | Path | None = None, cv: bool = True, results_dir: str | Path | None = None,
               log=print) -> Path:
    """Train the recipe, evaluate it (unless ``cv`` is False), write the bundle; return its folder."""
    import os

    from ser_model.corpora import scan
    from ser_model.encoder_features import ENCODER_NAME, feature_id, vector_dim
    from ser_model.whisper_model import TINY_EN_SHA256

    started = time.time()
    config_path = Path(config_path)
    s = load_head_recipe(config_path)
    from ser_model.recipe import RECIPE_FILE, recipe_text

    stored = recipe_text(config_path)  # read now: the file (or its base) may change while this trains
    from ser_model.tf_quiet import import_tensorflow

    import_tensorflow(s.threads)
    data_dir = Path(data_dir or os.environ.get("SER_DATASETS") or "../shared/datasets")
    clips = unique_clips(scan(data_dir).clips)
    if not clips:
        raise ParameterError(f"{data_dir}: no RAVDESS or TESS clips")
    log(f"{len(clips)} clips under {data_dir}")
    bank = build_bank(clips, cache_dir=cache_dir, threads=s.threads, progress=True, layers=s.encoder_layers)
    copies = training_copies(clips, s, cache_dir=cache_dir, progress=True)
    if s.speed_factors:
        log(f"speed-perturbed training copies: x{', x'.join(f'{f:g}' for f in s.speed_factors)} "
            f"of {', '.join(s.speed_corpora)}")
    if s.channel_copies:
        log(f"channel-augmented training copies: {s.channel_copies} simulated device(s) per speaker "
            f"of {', '.join(s.channel_corpora)}")
    if copies is not None:
        log(f"{len(copies.labels)} training copies in all")
    log(f"features ready ({time.time() - started:.0f} s)")
    metrics_out: dict[str, Any] = {"protocol": "speaker-independent: RAVDESS actors in 5 folds in order, TESS "
                                   "only ever in training; adapted = each test clip scored with a profile of "
                                   f"{s.adapt_k} other clips of its speaker (fixed seed, labels never read)"}
    min_conf = s.min_confidence
    if cv and len(set(bank.speakers[bank.corpora == 'ravdess'])) >= 2:
        res = cross_validate(bank, s, copies=copies, log=log)
        metrics_out["cv"] = _strip(res)
        temperature = fit_temperature(res["_y"], res["_probs"])
        res["_probs"] = {k: tempered(v, temperature) for k, v in res["_probs"].items()}
        metrics_out["temperature"] = temperature
        table = false_alarm_table(res["_y"], res["_probs"])
        metrics_out["false_alarms"] = table
        min_conf = choose_min_confidence(table)
        metrics_out["min_confidence"] = min_conf
        metrics_out["false_alarm_at_0.45"] = {k: table[k]["0.45"] for k in table}
        metrics_out["false_alarm_at_min_confidence"] = {k: table[k][str(min_conf)] for k in table}
        if results_dir is not None:
            rd = Path(results_dir)
            rd.mkdir(parents=True, exist_ok=True)
            np.savez(rd / "ser_v3_fold_probs.npz", y=res["_y"], **res["_probs"])
            reliability_plot(res["_y"], res["_probs"], rd / "reliability_ser_v3.png")
        if (bank.corpora == "tess").any():
            metrics_out["cross_corpus_ravdess_to_tess"] = cross_corpus(bank, s, copies=copies, temperature=temperature,
                                                                       min_confidence=min_conf)
        log(json.dumps({k: metrics_out[k] for k in metrics_out if k in ("min_confidence",
                                                                        "false_alarm_at_0.45")}))
    keep = np.isin(bank.corpora, s.corpora)
    head = fit_rows(training_rows(bank, keep, copies), s)
    metrics_out["train_seconds"] = round(time.time() - started, 1)
    out_dir = Path(out_dir or Path("models") / s.name)
    dim = vector_dim(s.encoder_layers)
    config = {
        "name": s.name.rsplit("-v", 1)[0],
        "version": int(s.name.rsplit("-v", 1)[1]) if "-v" in s.name and s.name.rsplit("-v", 1)[1].isdigit() else 1,
        "model_version": s.name,
        "architecture": f"ser-v3-{head.kind}",
        "labels": list(LABELS),
        "sample_rate": 16000,
        "features": {"kind": "whisper-encoder-mean-std+prosody", "dim": dim},
        "input": {"kind": "utterance", "dim": v3.input_dim(dim)},
        "encoder": {"name": ENCODER_NAME, "sha256": TINY_EN_SHA256,
                    **({"layers": list(s.encoder_layers)} if s.encoder_layers else {})},
        "feature_id": feature_id(layers=s.encoder_layers),
        "min_confidence": min_conf,
        "temperature": metrics_out.get("temperature", 1.0),
        "recipe": asdict(s),
        **v3.config_section(head.norm_mean, head.norm_std, head.prior),
    }
    from ser_model.bundle import save_bundle

    n_train = {c: int(np.sum(bank.corpora[keep] == c)) for c in s.corpora}
    card = model_card(s, metrics_out, n_train=n_train, params=int(head.model.count_params()))
    path = save_bundle(out_dir, model=head.model, config=config, metrics=metrics_out, card=card)
    (path / RECIPE_FILE).write_text(stored, encoding="utf-8")
    log(f"wrote {path} ({time.time() - started:.0f} s)")
    return path


def reliability_plot(y: np.ndarray, probs: dict[str, np.ndarray], out: Path) -> None:
    """Reliability diagram (confidence of the top label vs its accuracy), both protocols."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    bins = np.linspace(0, 1, 11)
    for name, p in probs.items():
        conf = p.max(1)
        ok = p.argmax(1) == y
        idx = np.clip(np.digitize(conf, bins) - 1, 0, 9)
        xs, ys = [], []
        for b in range(10):
            m = idx == b
            if m.sum() >= 5:
                xs.append(conf[m].mean())
                ys.append(ok[m].mean())
        ax.plot(xs, ys, marker="o", label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_xlabel("confidence of the top label")
    ax.set_ylabel("accuracy")
    ax.set_title("ser-v3, 5-fold RAVDESS-actor CV")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _fmt_recall(m: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in m["recall"].items())


def model_card(s: HeadRecipe, m: dict[str, Any], *, n_train: dict[str, int], params: int) -> str:
    layers = s.encoder_layers
    last_only = "Utterance vector: mean and std over time of the encoder output (384 + 384) and 27 prosody"
    vector = (last_only,) if not layers else (
        "Utterance vector: mean and std over time of the outputs of the encoder's layers "
        + ", ".join(map(str, layers)),
        f"({len(layers)} x 384 each; `ser_model/whisper_layers.py`: the middle layers carry more of how a thing",
        "is said than the last) and 27 prosody")
    lines = [
        f"# {s.name}",
        "",
        "Speech emotion recognition from the Whisper tiny.en encoder (the same SHA-256-pinned weights the",
        "assistant's speech-to-text uses) plus cheap prosody (autocorrelation F0, energy, spectral shape),",
        "with optional per-speaker adaptation through a `VoiceProfile`.",
        "",
        "## Architecture",
        "",
        *vector,
        "statistics. The head reads it twice, standardised by the training population and by the",
        "speaker's shrunk statistics (`PopulationPrior`, strength "
        f"{s.strength:g} pseudo-clips), plus log(1+n) of the profile's clip count; head `{s.head}` "
        f"({params} parameters).",
        f"Training draws, for every training clip, profiles of {list(s.train_ks)} other clips of its speaker "
        "(-1 = all), never the clip itself, so training matches use with 0..N clips.",
        "",
        "## Training data",
        "",
        f"{n_train}: RAVDESS speech actors 01-20 (CC BY-NC-SA 4.0) and TESS (CC BY-NC-ND 4.0). Labels:",
        "neutral (RAVDESS calm counts as neutral), happy, sad, angry, fearful, disgust, surprised.",
        "",
    ]
    if s.speed_factors:
        lines[-1:-1] = [
            f"Each {' and '.join(c.upper() for c in s.speed_corpora)} clip is also trained on played "
            f"{' and '.join(f'{f:g}' for f in s.speed_factors)} times",
            "as fast (tempo and pitch together), each copy a speaker of its own, in the folds that train",
            "its original's speaker only; test clips are never copied.",
        ]
    if s.channel_copies:
        lines[-1:-1] = [
            f"Each {' and '.join(c.upper() for c in s.channel_corpora)} clip is also trained on through "
            f"{s.channel_copies} simulated recording channel(s)",
            "(`ser_model.channel`: room reverberation, band-limited microphone, noise at 15-30 dB SNR, gain),",
            "one device per speaker and copy, each a speaker of its own, in the folds that train its",
            "original's speaker only; test clips are never copied.",
        ]
    if "cv" in m:
        cv = m["cv"]
        lines += [
            "## Speaker-independent results",
            "",
            "5-fold cross-validation over RAVDESS actors (fold k tests actors 4k+1..4k+4; TESS only in",
            f"training). Adapted: each test clip scored with a profile of {s.adapt_k} other clips of its "
            "speaker (fixed seed, labels never read).",
            "",
            "| protocol | UAR | accuracy | macro-F1 | fold UARs |",
            "|---|---|---|---|---|",
        ]
        for k in ("unadapted", "adapted"):
            lines.append(f"| {k} | {cv[k]['uar']:.3f} | {cv[k]['accuracy']:.3f} | {cv[k]['macro_f1']:.3f} | "
                         f"{cv[k]['uar_folds']} |")
        lines += ["", f"Recall, unadapted: {_fmt_recall(cv['unadapted'])}.",
                  f"Recall, adapted: {_fmt_recall(cv['adapted'])}.", ""]
        if "cross_corpus_ravdess_to_tess" in m:
            xc = m["cross_corpus_ravdess_to_tess"]
            lines += ["Cross-corpus proxy (trained on RAVDESS alone, scored on all of TESS): "
                      f"UAR {xc['unadapted']['uar']:.3f} unadapted, {xc['adapted']['uar']:.3f} adapted."]
            if "neutral_called_negative" in xc["unadapted"]:
                lines += ["TESS neutral clips called sad/angry/fearful/disgust at confidence >= "
                          f"{m['min_confidence']:g}: "
                          f"{100 * xc['unadapted']['neutral_called_negative']:.1f} % unadapted, "
                          f"{100 * xc['adapted']['neutral_called_negative']:.1f} % adapted."]
            lines += [""]
        fa = m["false_alarms"]
        mc = m["min_confidence"]
        lines += [
            "## False alarms and min_confidence",
            "",
            f"Probabilities are temperature-scaled (T = {m.get('temperature', 1.0):g}, fitted on the CV folds'",
            "held-out NLL, config.json `temperature`; the label is unchanged), as are the figures below.",
            "",
            "Fraction of neutral/calm CV clips labelled sad, angry, fearful or disgust with confidence",
            f">= the threshold: at 0.45 {fa['unadapted']['0.45']:.3f} unadapted / {fa['adapted']['0.45']:.3f} "
            f"adapted; at {mc} {fa['unadapted'][str(mc)]:.3f} / {fa['adapted'][str(mc)]:.3f}.",
            f"Recommended `min_confidence`: **{mc}** (also in config.json), the lowest threshold on a 0.05",
            "grid with <= 10 % such false alarms in both protocols: below it the assistant would presume a",
            "negative feeling in more than one neutral utterance in ten. Reliability diagram:",
            "docs/results/reliability_ser_v3.png.",
            "",
        ]
    lines += [
        "## Limitations",
        "",
        "Acted speech from 22 speakers of North-American English; the cross-corpus proxy is the only",
        "evidence about new channels. A new voice meets the unadapted model; adaptation needs a",
        "handful of that speaker's utterances. Not for clinical or safety decisions.",
        "",
        f"Retrain: `ser-model train --config recipe.toml` (took {m.get('train_seconds', 0):.0f} s with CV here).",
    ]
    return "\n".join(lines) + "\n"


__all__ = ["HeadRecipe", "build_bank", "cross_validate", "fit_head", "main_train", "replace"]
