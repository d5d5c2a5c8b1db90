"""``ser-model compare --data DIR``: every model on the same speaker-independent folds.

Protocol: RAVDESS actors are split into folds in order (actors 01-20 in 5 folds: fold k tests
actors 4k+1..4k+4); each fold trains on all other RAVDESS actors plus every TESS clip and tests
on its held-out actors only. Neural models early-stop on two validation actors taken from the
training actors; classical ones tune their grids with GroupKFold by speaker inside the
training clips. Augmented copies exist only for training clips' use. Writes ``results.json``,
``results.md``, the held-out class probabilities of the neural models (``fold_probs.npz``,
from which ``--rescore`` scores further ensembles without training) and the plots
(confusion matrix of the configuration's ensemble, or of the best model, over all folds;
training curves; per-class F1) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ser_model.baselines import BASELINES
from ser_model.errors import ParameterError, SerError
from ser_model.labels import LABELS
from ser_model.neural import ARCHITECTURES
from ser_model.tf_quiet import import_keras

MODELS: tuple[str, ...] = (*ARCHITECTURES, *BASELINES)
DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "ser-crnn.toml"
PROTOCOL = ("speaker-independent: RAVDESS actors split into folds in order (01-20: fold k tests actors "
            "4k+1..4k+4), all TESS clips in every training fold; test actors never seen in training or tuning")


def make_folds(speakers: np.ndarray, n_folds: int) -> list[list[str]]:
    """RAVDESS test-speaker groups: sorted actors split into ``n_folds`` consecutive groups."""
    actors = sorted({s for s in speakers.tolist() if s.startswith("ravdess:")})
    if len(actors) < 2:
        raise ParameterError(
            f"need RAVDESS clips of at least 2 actors for speaker-independent folds, got {len(actors)}"
        )
    n = min(n_folds, len(actors))
    return [list(g) for g in np.array_split(np.array(actors), n)]


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    present = sorted(set(y_true.tolist()))
    with warnings.catch_warnings():  # a fold's predictions may name classes its speakers lack
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        uar = balanced_accuracy_score(y_true, y_pred)
    return {"uar": float(uar), "accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))}


def _summary(fold_scores: list[dict], y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix, f1_score

    out: dict[str, Any] = {}
    for m in ("uar", "accuracy", "macro_f1"):
        vals = [f[m] for f in fold_scores]
        out[m] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "folds": [round(v, 4) for v in vals]}
    out["per_class_f1"] = [float(v) for v in f1_score(y_true, y_pred, labels=range(len(LABELS)), average=None,
                                                      zero_division=0)]
    out["confusion"] = confusion_matrix(y_true, y_pred, labels=range(len(LABELS))).tolist()
    return out


@dataclass
class FoldRuns:
    """What the fold runner collected: per model (and ``ensemble``) the true and predicted labels
    and the scores of each fold, seconds spent, parameter counts, training histories and the
    neural models' held-out probabilities per fold."""

    y_true: dict[str, list[np.ndarray]] = field(default_factory=dict)
    y_pred: dict[str, list[np.ndarray]] = field(default_factory=dict)
    scores: dict[str, list[dict]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    histories: dict[str, list] = field(default_factory=dict)
    fold_probs: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    def add(self, name: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
        """Record one fold's predictions of ``name``; returns its scores."""
        sc = _scores(y_true, y_pred)
        self.y_true.setdefault(name, []).append(y_true)
        self.y_pred.setdefault(name, []).append(y_pred)
        self.scores.setdefault(name, []).append(sc)
        return sc


def run_compare(data_dir: str | Path, *, out_dir: str | Path = "docs/results", models: Sequence[str] = MODELS,
                config_path: str | Path | None = None, quick: bool = False, n_folds: int = 5,
                epochs: int | None = None, cache_dir: str | Path | None = None, progress: bool = True,
                command: str | None = None) -> dict:
    """Run the comparison and write results.json, results.md and the PNG plots into ``out_dir``.

    Every neural model takes its settings from the recipe's ``[[members]]`` table of its
    architecture. ``quick``: 2 folds, 2 epochs, no augmented copies, at most 12 clips per
    speaker (tests). Returns the results dict that was written to results.json.
    """
    from ser_model.dataset import labels_of, speakers_of
    from ser_model.recipe import load_recipe
    from ser_model.train import select_clips

    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ParameterError(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODELS)}")
    cfg = load_recipe(config_path or DEFAULT_CONFIG)
    for name in models:
        if name in ARCHITECTURES:
            cfg.member(name)  # refuse a neural model the recipe has no settings for, before any work
    if quick:
        cfg = replace(cfg, data=replace(cfg.data, limit_per_speaker=cfg.data.limit_per_speaker or 12),
                      train=replace(cfg.train, epochs=2, augment_copies=0, val_speakers=1))
        n_folds = min(n_folds, 2)
    if epochs is not None:
        cfg = replace(cfg, train=replace(cfg.train, epochs=epochs))
    t_start = time.perf_counter()
    clips = select_clips(cfg.data, data_dir)
    labels, speakers = labels_of(clips), speakers_of(clips)
    folds = make_folds(speakers, n_folds)
    runs = run_folds(cfg, clips, models, folds, cache_dir=cache_dir, progress=progress)
    out = {
        "protocol": PROTOCOL,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command or "ser-model compare",
        "quick": quick,
        "labels": list(LABELS),
        "folds": folds,
        "n_clips": len(clips),
        "config": cfg.to_dict(),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "models": summarise_runs(cfg, runs, models),  # _write_report adds "best"
        "histories": {m: runs.histories.get(m, []) for m in models if m in ARCHITECTURES},
    }
    report_compare(out, runs, labels, speakers, Path(out_dir))
    return out


def run_folds(cfg, clips, models: Sequence[str], folds: list[list[str]], *, cache_dir=None,
              progress: bool = True) -> FoldRuns:
    """Train and test every model on every fold (and the recipe's ensemble, when all its members
    ran), printing each fold's scores; the fold runner of :func:`run_compare`."""
    from ser_model.baselines import fit_baseline
    from ser_model.dataset import default_cache_dir, extract_pooled, labels_of, speakers_of
    from ser_model.train import _progress_bar, build_feature_bank

    cache = default_cache_dir() if cache_dir is None else Path(cache_dir)
    neural = [m for m in models if m in ARCHITECTURES]
    classical = [m for m in models if m in BASELINES]
    bank = build_feature_bank(clips, cfg, cache_dir=cache, progress=progress) if neural else None
    pooled = extract_pooled(clips, settings=cfg.features, cache_dir=cache, progress=progress) if classical else None
    labels, speakers = labels_of(clips), speakers_of(clips)
    runs = FoldRuns(seconds={m: 0.0 for m in models}, histories={m: [] for m in neural})
    members = cfg.member_names
    with _progress_bar(progress) as bar:
        overall = bar.add_task("compare: folds x models", total=len(folds) * len(models))
        for k, test_spk in enumerate(folds):
            is_test = np.isin(speakers, test_spk)
            test_idx = np.where(is_test)[0]
            train_all = np.where(~is_test)[0]
            for name in models:
                t0 = time.perf_counter()
                if name in ARCHITECTURES:
                    pred = _fold_neural(cfg, name, k, bank, train_all, test_idx, runs, bar)
                else:
                    est = fit_baseline(name, pooled[train_all], labels[train_all], speakers[train_all],
                                       seed=cfg.train.seed)
                    pred = est.predict(pooled[test_idx])
                runs.seconds[name] += time.perf_counter() - t0
                sc = runs.add(name, labels[test_idx], np.asarray(pred))
                bar.console.print(
                    f"fold {k} ({', '.join(test_spk)}) {name}: UAR {sc['uar']:.3f} "
                    f"acc {sc['accuracy']:.3f} F1 {sc['macro_f1']:.3f} [{time.perf_counter() - t0:.0f} s]"
                )
                bar.advance(overall)
            if cfg.is_ensemble and all(m in runs.fold_probs.get(k, {}) for m in members):
                pred = np.mean([runs.fold_probs[k][m] for m in members], axis=0).argmax(1)
                sc = runs.add("ensemble", labels[test_idx], pred)
                runs.seconds["ensemble"] = sum(runs.seconds[m] for m in members)
                bar.console.print(f"fold {k} ensemble ({'+'.join(members)}): UAR {sc['uar']:.3f} "
                                  f"acc {sc['accuracy']:.3f} F1 {sc['macro_f1']:.3f}")
    return runs


def _fold_neural(cfg, name: str, k: int, bank, train_all: np.ndarray, test_idx: np.ndarray, runs: FoldRuns,
                 bar) -> np.ndarray:
    """Fold ``k`` of neural model ``name``: early-stopped on validation actors of the training
    actors; keeps its held-out probabilities, history and size in ``runs``; returns its predictions."""
    from ser_model.train import fit_neural, predict_frames, validation_speakers

    speakers = bank.speakers
    val_spk = validation_speakers(speakers[train_all], cfg.train.val_speakers, cfg.train.seed + k)
    is_val = np.isin(speakers, val_spk)
    tr, va = train_all[~is_val[train_all]], train_all[is_val[train_all]]
    fit = fit_neural(bank, tr, va, cfg, model_settings=cfg.member(name), progress=bar, description=f"fold {k} {name}")
    prob = predict_frames(fit.model, bank.clean, test_idx, fit.mean, fit.std, cfg.train.max_frames)
    runs.fold_probs.setdefault(k, {})[name] = prob
    runs.histories[name].append(fit.history)
    runs.params[name] = int(fit.model.count_params())
    import_keras().backend.clear_session()
    return prob.argmax(1)


def summarise_runs(cfg, runs: FoldRuns, models: Sequence[str]) -> dict[str, Any]:
    """The ``models`` rows of results.json: mean and std over folds, per-class F1, confusion, time, size."""
    results: dict[str, Any] = {}
    for name in [*models, *(["ensemble"] if "ensemble" in runs.scores else [])]:
        y_true, y_pred = np.concatenate(runs.y_true[name]), np.concatenate(runs.y_pred[name])
        results[name] = {**_summary(runs.scores[name], y_true, y_pred), "seconds": round(runs.seconds[name], 1)}
        if name in runs.params:
            results[name]["params"] = runs.params[name]
    if "ensemble" in results:
        results["ensemble"]["params"] = sum(runs.params[m] for m in cfg.member_names)
        results["ensemble"]["members"] = cfg.member_names
    return results


def report_compare(res: dict, runs: FoldRuns, labels: np.ndarray, speakers: np.ndarray, out_dir: Path) -> None:
    """The reporter of :func:`run_compare`: writes the held-out probabilities (``fold_probs.npz``,
    so other ensembles can be scored without retraining), the training curves, results.json,
    results.md and the plots into ``out_dir``."""
    from ser_model.plots import plot_training_curves

    out_dir.mkdir(parents=True, exist_ok=True)
    if runs.fold_probs:
        order = sorted(runs.fold_probs)
        fold_labels = [labels[np.isin(speakers, res["folds"][k])] for k in order]
        arrays = {"labels": np.concatenate(fold_labels),
                  "fold": np.concatenate([np.full(len(y), k) for k, y in zip(order, fold_labels)])}
        for m in runs.histories:
            if all(m in runs.fold_probs[k] for k in order):
                arrays[f"probs_{m}"] = np.concatenate([runs.fold_probs[k][m] for k in order]).astype(np.float32)
        np.savez_compressed(out_dir / "fold_probs.npz", **arrays)
    if any(runs.histories.values()):
        plot_training_curves(runs.histories, out_dir / "training_curves.png")
    _write_report(res, out_dir)


def _write_report(res: dict, out_dir: Path) -> None:
    """results.json, results.md, the confusion matrix (of the config's ensemble when there is
    one, since that is what ships, else of the best model) and the per-class F1 plot."""
    from ser_model.plots import plot_confusion, plot_per_class_f1

    results = res["models"]
    res["best"] = max(results, key=lambda m: results[m]["uar"]["mean"])
    shown = "ensemble" if "ensemble" in results else res["best"]
    (out_dir / "results.json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    (out_dir / "results.md").write_text(results_markdown(res), encoding="utf-8")
    plot_confusion(np.array(results[shown]["confusion"]), out_dir / "confusion_best.png",
                   title=f"{shown}: held-out speakers, all folds (row-normalised)")
    plot_per_class_f1({m: r["per_class_f1"] for m, r in results.items()}, out_dir / "per_class_f1.png")


def _same_recipe(a: dict, b: dict) -> bool:
    """Whether two recipes (``Recipe.to_dict()``) agree but for what an ensemble's rescoring may
    change: which networks form the ensemble, the bundle name and version. Members both list must
    have the same settings. A results.json written before ``[[members]]`` has the main member as
    ``model`` (and names the others in ``train.ensemble_with``, whose settings it did not record)."""
    def split(config: dict) -> tuple[dict, dict]:
        rest = {k: v for k, v in config.items() if k not in ("members", "model")}
        rest["train"] = {k: v for k, v in config.get("train", {}).items()
                         if k not in ("ensemble_with", "name", "version")}
        members = config.get("members") or ([config["model"]] if "model" in config else [])
        return rest, {m["architecture"]: m for m in members}

    (rest_a, members_a), (rest_b, members_b) = split(a), split(b)
    return rest_a == rest_b and all(members_a[m] == members_b[m] for m in set(members_a) & set(members_b))


def rescore_ensembles(out_dir: str | Path, ensembles: Sequence[Sequence[str]],
                      config_members: Sequence[str] | None = None, config: dict | None = None) -> dict:
    """Add the rows of further ensembles to an earlier run's results, without training.

    Reads ``out_dir/results.json`` and the held-out probabilities that run saved in
    ``out_dir/fold_probs.npz``; each entry of ``ensembles`` (two or more neural models of that
    run) becomes a row named by its members joined with ``+``, scored on the same folds exactly
    as the config's ensemble is. ``config_members``: the members of the configuration's
    ensemble now, when they differ from the run's; its ``ensemble`` row is then scored anew and
    the run's one is kept under its members' name; ``config`` (its ``to_dict()``) must then be
    the run's recipe but for the ensemble's members and the bundle name and version. Rewrites
    results.json, results.md and the plots; returns the results.
    """
    out_dir = Path(out_dir)
    try:
        res = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
        with np.load(out_dir / "fold_probs.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError as err:
        raise ParameterError(f"{err.filename}: not found; run `ser-model compare` with neural models first") from err
    labels, fold = arrays["labels"], arrays["fold"]
    todo = [("+".join(m), list(m)) for m in ensembles]
    old = res["models"].get("ensemble")
    ran_all = config_members is not None and all(f"probs_{m}" in arrays for m in config_members)
    if ran_all and (old is None or list(old["members"]) != list(config_members)):
        if config is not None:
            if not _same_recipe(json.loads(json.dumps(config)), res.get("config", {})):
                raise ParameterError(f"the results in {out_dir} were made with another recipe than --config; "
                                     "run compare again")
            res["config"] = config
        if old is not None:
            res["models"]["+".join(old["members"])] = res["models"].pop("ensemble")
        todo.append(("ensemble", list(config_members)))
    folds = sorted(set(fold.tolist()))
    for name, members in todo:
        missing = [m for m in members if f"probs_{m}" not in arrays]
        if len(members) < 2 or len(set(members)) != len(members) or missing:
            have = sorted(k[len("probs_"):] for k in arrays if k.startswith("probs_"))
            raise ParameterError(f"an ensemble needs two or more different models of that run ({', '.join(have)}); "
                                 f"got {'+'.join(members)}")
        pred = np.mean([arrays[f"probs_{m}"] for m in members], axis=0).argmax(1)
        scores = [_scores(labels[fold == k], pred[fold == k]) for k in folds]
        row = {**_summary(scores, labels, pred), "members": members,
               "seconds": round(sum(res["models"][m]["seconds"] for m in members), 1)}
        if all("params" in res["models"][m] for m in members):
            row["params"] = sum(res["models"][m]["params"] for m in members)
        res["models"][name] = row
    _write_report(res, out_dir)
    return res


def results_markdown(res: dict) -> str:
    """The results table (mean ± std over folds) as Markdown."""
    models = sorted(res["models"], key=lambda m: -res["models"][m]["uar"]["mean"])
    lines = [
        "# Speaker-independent comparison" + (" (QUICK MODE: not real results)" if res.get("quick") else ""), "",
        f"Protocol: {res['protocol']}.", "",
        "Folds (test speakers): " + "; ".join(f"{k}: {', '.join(s.split(':')[1] for s in f)}"
                                               for k, f in enumerate(res["folds"])) + ".", "",
        f"{res['n_clips']} clips. Command: `{res['command']}` ({res['wall_seconds'] / 60:.1f} min wall).", "",
        "| model | UAR | accuracy | macro-F1 | params | train+test s |", "|---|---|---|---|---|---|",
    ]
    for m in models:
        r = res["models"][m]
        cells = " | ".join(f"{r[k]['mean']:.3f} ± {r[k]['std']:.3f}" for k in ("uar", "accuracy", "macro_f1"))
        lines.append(f"| {m}{' (best)' if m == res['best'] else ''} | {cells} | {r.get('params', '—')} | "
                     f"{r['seconds']:.0f} |")
    if "ensemble" in res["models"]:
        lines += ["", "ensemble = the configuration's (shipped) recipe: the mean of the class probabilities of "
                  + " + ".join(res["models"]["ensemble"]["members"])
                  + ", the models trained in the same fold (no extra training, no test-fold tuning)."]
    extra = [m for m in res["models"] if "+" in m]
    if extra:
        lines += ["", ", ".join(extra) + ": the same averaging over other members, scored afterwards from the "
                  "held-out probabilities this run saved (`ser-model compare --rescore --ensemble A+B+...`)."]
    lines += ["", "UAR = unweighted average recall (balanced accuracy). Std is over folds.", "",
              "Per-class F1 (all folds' predictions pooled):", "",
              "| model | " + " | ".join(res["labels"]) + " |", "|---|" + "---|" * len(res["labels"])]
    for m in models:
        lines.append(f"| {m} | " + " | ".join(f"{v:.2f}" for v in res["models"][m]["per_class_f1"]) + " |")
    shown = "ensemble" if "ensemble" in res["models"] else res["best"]
    lines += ["", f"Confusion matrix of {shown}:", "", "![confusion](confusion_best.png)", "",
              "![per-class F1](per_class_f1.png)", ""]
    if any(res.get("histories", {}).values()):
        lines += ["![training curves](training_curves.png)", ""]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``ser-model compare``."""
    parser.add_argument("--data", dest="data_dir", default=None,
                        help="corpora folder (e.g. ../shared/datasets); required unless --rescore")
    from ser_model.outpaths import check_output_dir

    parser.add_argument("--out", dest="out_dir", default="docs/results", type=check_output_dir,
        help="output folder (default docs/results)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), metavar="MODEL",
                        help=f"models to compare (default all: {' '.join(MODELS)})")
    parser.add_argument(
        "--config", default=None, help="training TOML for the neural recipe (default: shipped ser-crnn)"
    )
    parser.add_argument("--quick", action="store_true", help="2 folds, 2 epochs, few clips: a smoke test, not results")
    parser.add_argument("--folds", type=int, default=5, help="number of speaker folds (default 5)")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument(
        "--cache", dest="cache_dir", default=None, type=check_output_dir,
        help="feature cache folder (default .cache/features)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--ensemble", action="append", default=[], metavar="A+B[+...]",
                        help="also score this ensemble of neural models (repeatable), e.g. lstm+cnn1d")
    parser.add_argument("--rescore", action="store_true",
                        help="do not train: re-score the results already in --out from the held-out "
                             "probabilities that run saved: add the --ensemble rows, and score the ensemble "
                             "row anew if --config's ensemble has other members")


def run(args: argparse.Namespace) -> int:
    """Run ``ser-model compare`` from parsed arguments; one line and status 2 on bad input."""
    argv = sys.argv[1:]
    if argv and argv[0] == "compare":
        argv = argv[1:]
    command = "ser-model compare " + " ".join(shlex.quote(a) for a in argv)
    try:
        ensembles = [e.split("+") for e in args.ensemble]
        if args.rescore:
            from ser_model.recipe import load_recipe

            cfg = load_recipe(args.config or DEFAULT_CONFIG)
            members = cfg.member_names if cfg.is_ensemble else None
            res = rescore_ensembles(args.out_dir, ensembles, config_members=members, config=cfg.to_dict())
        else:
            if args.data_dir is None:
                raise ParameterError("--data DIR is required (the corpora folder, e.g. ../shared/datasets)")
            if args.folds < 2:
                raise ParameterError(f"--folds must be >= 2, got {args.folds}")
            res = run_compare(args.data_dir, out_dir=args.out_dir, models=args.models, config_path=args.config,
                              quick=args.quick, n_folds=args.folds, epochs=args.epochs, cache_dir=args.cache_dir,
                              progress=not args.no_progress, command=command)
            if ensembles:
                res = rescore_ensembles(args.out_dir, ensembles)
    except (SerError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(results_markdown(res).split("\n\nUAR =")[0])
    print(f"wrote {Path(args.out_dir) / 'results.md'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ser-model compare", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
