"""ser-v3 head experiments on cached features, on the protocol's folds (not part of the shipped path).

Runs the same 5-fold RAVDESS-actor CV as ``ser-model train`` (TESS only in training; adapted =
each test clip with a profile of ``adapt_k`` other clips of its speaker, drawn with the same seed
whatever the training seed, so ensemble members meet the same profiles) for one head variant and
saves its held-out probabilities, so that ensembles are scored by averaging saved runs::

    SER_DATASETS=../shared/datasets python scripts/v3_cv.py run NAME --cache DIR [--set key=value ...]
    python scripts/v3_cv.py combine NAME NAME ... [--out DIR]

``run`` starts from ``ser_model/configs/ser-v3-final.toml`` (the final-output MLP recipe);
``--set seed=1`` or ``--set head=logreg`` changes one recipe key. Probabilities go to
``DIR/cv_runs/NAME.npz`` (DIR: ``--out``, default the cache).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.startswith("["):
        return tuple(json.loads(text))
    return text


def thirds(frames: np.ndarray) -> np.ndarray:
    """Encoder means over the first, middle and last third of the utterance (3 * 384)."""
    parts = np.array_split(np.asarray(frames, np.float32), 3)
    return np.concatenate([p.mean(0) if len(p) else frames.mean(0) for p in parts])


def load_bank(cache: Path, threads: int, pool: str = "mean-std"):
    """The bank of the shipped utterance vectors; ``pool="thirds"`` appends :func:`thirds`."""
    from ser_model.corpora import scan
    from ser_model.encoder_features import clip_features
    from ser_model.train_v3 import Bank, build_bank, unique_clips

    saved = cache / ("bank_v3.npz" if pool == "mean-std" else f"bank_v3_{pool}.npz")
    if saved.is_file():
        z = np.load(saved, allow_pickle=False)
        return Bank(z["vectors"], z["labels"], z["speakers"], z["corpora"], list(z["paths"]))
    data = Path(os.environ.get("SER_DATASETS") or ROOT.parent / "shared" / "datasets")
    bank = build_bank(unique_clips(scan(data).clips), cache_dir=cache, threads=threads, progress=True)
    if pool == "thirds":
        extra = [thirds(clip_features(None, p, cache_dir=cache)[0]) for p in bank.paths]
        bank.vectors = np.concatenate([bank.vectors, np.stack(extra).astype(np.float64)], axis=1)
    np.savez(saved, vectors=bank.vectors, labels=bank.labels, speakers=bank.speakers, corpora=bank.corpora,
             paths=np.array(bank.paths))
    return bank


def run_folds(bank, s, fit_score, *, eval_seed: int, only=None):
    """The protocol's folds: RAVDESS actors tested, TESS only in training. ``fit_score(train,
    test, seed)`` (boolean masks over the bank; ``seed``: the adapted draws', ``eval_seed`` +
    fold index) returns {"unadapted": probs, "adapted": probs} of the test rows. Prints each
    fold's UARs; returns (probs over the bank, rows tested). ``only``: 1-based folds to run."""
    from ser_model.compare import make_folds
    from ser_model.train_v3 import metrics

    rav = bank.corpora == "ravdess"
    folds = make_folds(bank.speakers[rav], s.n_folds)
    n = len(bank.labels)
    probs = {"unadapted": np.zeros((n, 7)), "adapted": np.zeros((n, 7))}
    tested = np.zeros(n, dtype=bool)
    t0 = time.time()
    for i, actors in enumerate(folds):
        if only and i + 1 not in only:
            continue
        tf0 = time.time()
        test = np.isin(bank.speakers, actors)
        train = np.isin(bank.corpora, s.corpora) & ~test
        p = fit_score(train, test, eval_seed + i)
        for k, v in p.items():
            probs[k][test] = v
        tested |= test
        print(f"  fold {i + 1}: {metrics(bank.labels[test], p['unadapted'])['uar']:.4f} / "
              f"{metrics(bank.labels[test], p['adapted'])['uar']:.4f} (fold {time.time() - tf0:.0f} s, "
              f"total {time.time() - t0:.0f} s)", flush=True)
    return probs, tested


def run(args) -> None:
    from ser_model.recipe import load_head_recipe
    from ser_model.tf_quiet import import_tensorflow
    from ser_model.train_v3 import fit_head, score_protocols

    s = load_head_recipe(ROOT / "ser_model" / "configs" / "ser-v3-final.toml")
    s = replace(s, **{k: _value(v) for k, v in (kv.split("=", 1) for kv in args.set)})
    import_tensorflow(s.threads)
    bank = load_bank(Path(args.cache), s.threads, args.pool)
    def fit_score(train, test, seed):
        head = fit_head(bank.vectors[train], bank.labels[train], bank.speakers[train], bank.corpora[train], s)
        return score_protocols(head, bank.vectors[test], bank.speakers[test], adapt_k=s.adapt_k, seed=seed)

    run_and_save(bank, s, fit_score, args)


def run_and_save(bank, s, fit_score, args) -> None:
    """:func:`run_folds` with ``fit_score``; held-out probabilities to ``cv_runs/NAME.npz``, summarised."""
    probs, tested = run_folds(bank, s, fit_score, eval_seed=args.eval_seed)
    out = Path(args.out or args.cache) / "cv_runs"
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / f"{args.name}.npz", y=bank.labels[tested], speakers=bank.speakers[tested],
             unadapted=probs["unadapted"][tested], adapted=probs["adapted"][tested])
    summarize([out / f"{args.name}.npz"], args.name)


def summarize(paths: list[Path], name: str, *, mean: str = "prob") -> dict:
    from ser_model.compare import make_folds
    from ser_model.train_v3 import false_alarm_table, fit_temperature, metrics
    from ser_model.v3 import tempered

    runs = [np.load(p, allow_pickle=False) for p in paths]
    y, spk = runs[0]["y"], runs[0]["speakers"]
    if mean == "prob":
        probs = {k: np.mean([r[k] for r in runs], axis=0) for k in ("unadapted", "adapted")}
    else:  # each member temperature-scaled on its own first (its over-confidence no longer weighs)
        scaled = [{k: tempered(r[k], fit_temperature(y, {q: r[q] for q in ("unadapted", "adapted")}))
                   for k in ("unadapted", "adapted")} for r in runs]
        probs = {k: np.mean([m[k] for m in scaled], axis=0) for k in ("unadapted", "adapted")}
    folds = make_folds(spk, 5)
    res = {"variant": name, "members": [p.stem for p in paths], "mean": mean}
    for k, p in probs.items():
        m = metrics(y, p)
        res[k] = round(m["uar"], 4)
        res[f"{k}_folds"] = [round(metrics(y[np.isin(spk, f)], p[np.isin(spk, f)])["uar"], 4) for f in folds]
    t = fit_temperature(y, probs)
    table = false_alarm_table(y, {k: tempered(v, t) for k, v in probs.items()})
    res["temperature"] = t
    res["fa_0.45"] = [table[k]["0.45"] for k in table]
    res["fa_0.55"] = [table[k]["0.55"] for k in table]
    print(json.dumps(res), flush=True)
    return res


def import_shipped(args) -> None:
    """The shipped run's held-out probabilities (docs/results, temperature-scaled) as run NAME, un-tempered."""
    b = np.load(args.probs, allow_pickle=False)
    if args.temperature is None:
        config = json.loads((ROOT / "models" / "ser-v3" / "config.json").read_text(encoding="utf-8"))
        args.temperature = float(config["temperature"])
    z = np.load(Path(args.cache) / "bank_v3.npz", allow_pickle=False)
    rav = z["corpora"] == "ravdess"
    if not np.array_equal(z["labels"][rav], b["y"]):
        raise SystemExit("the saved probabilities are not in this bank's RAVDESS order")

    def raw(q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, np.float64) ** args.temperature
        return q / q.sum(1, keepdims=True)

    out = Path(args.cache) / "cv_runs"
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / f"{args.name}.npz", y=b["y"], speakers=z["speakers"][rav], unadapted=raw(b["unadapted"]),
             adapted=raw(b["adapted"]))
    summarize([out / f"{args.name}.npz"], args.name)


def run_arguments(r: argparse.ArgumentParser) -> None:
    """The arguments every head run takes: its name, the feature cache, where runs go, recipe
    changes and the adapted protocol's seed."""
    r.add_argument("name")
    r.add_argument("--cache", required=True)
    r.add_argument("--out")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--eval-seed", type=int, default=0, help="seed of the adapted protocol's profile draws")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    run_arguments(r)
    r.add_argument("--pool", choices=("mean-std", "thirds"), default="mean-std",
                   help="utterance vector: the shipped one, or with encoder means over thirds appended")
    c = sub.add_parser("combine")
    c.add_argument("names", nargs="+")
    c.add_argument("--out", required=True, help="the folder holding cv_runs/")
    c.add_argument("--mean", choices=("prob", "tempered"), default="prob",
                   help="average raw probabilities, or each member's temperature-scaled ones")
    i = sub.add_parser("import-shipped", help="the shipped run's fold probabilities as a run (needs a bank)")
    i.add_argument("name")
    i.add_argument("--cache", required=True)
    i.add_argument("--probs", default=str(ROOT / "docs" / "results" / "ser_v3_fold_probs.npz"))
    i.add_argument("--temperature", type=float, help="the temperature they were scaled by "
                   "(default: the shipped bundle's, models/ser-v3/config.json)")
    args = ap.parse_args()
    if args.cmd == "run":
        run(args)
    elif args.cmd == "import-shipped":
        import_shipped(args)
    else:
        summarize([Path(args.out) / "cv_runs" / f"{n}.npz" for n in args.names], "+".join(args.names),
                  mean=args.mean)


if __name__ == "__main__":
    main()
