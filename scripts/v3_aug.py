"""ser-v3 head trained with speed-perturbed copies of its RAVDESS training clips (an experiment
on ``scripts/v3_cv.py``'s folds, not part of the shipped path).

Each RAVDESS clip of the bank is played ``--factors`` times faster (``ser_model.augment.speed``,
Kaldi-style: tempo and pitch move together, about -1.8 / +1.7 semitones at 0.9 / 1.1),
conditioned again (``ser_model.audio.prepare``) and pooled into the shipped utterance vector.
A copy counts as a speaker of its own (``ravdess:01@0.9``: its own profile statistics, since
the perturbation moves the voice's pitch) and joins training only in the folds whose training
actors include its original's actor; test clips are never perturbed. Everything else is
``v3_cv run``: the same folds, recipe, profile draws and output::

    SER_DATASETS=../shared/datasets python scripts/v3_aug.py run NAME --cache DIR [--factors 0.9,1.1] [--set K=V]

The copies' vectors are cached in ``DIR/aug_speed_<factor>.npz``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from v3_cv import _value, load_bank, run_and_save, run_arguments  # noqa: E402


def speed_copies(bank, cache: Path, factor: float, threads: int) -> np.ndarray:
    """Utterance vectors of the bank's RAVDESS clips played ``factor`` times faster (cached)."""
    saved = cache / f"aug_speed_{factor:g}.npz"
    rav = np.flatnonzero(bank.corpora == "ravdess")
    paths = np.array([bank.paths[i] for i in rav])
    if saved.is_file():
        z = np.load(saved, allow_pickle=False)
        if np.array_equal(z["paths"], paths):
            return z["vectors"]
    from ser_model.audio import load_audio, prepare
    from ser_model.augment import speed
    from ser_model.encoder_features import utterance_vector
    from ser_model.whisper_model import shared_whisper

    model = shared_whisper(cpu_threads=threads)
    out, t0 = [], time.time()
    for k, path in enumerate(paths, 1):
        y = prepare(speed(load_audio(path), rate=factor), sample_rate=16000)
        out.append(utterance_vector(model, y))
        if k % 100 == 0:
            print(f"  speed {factor:g}: {k}/{len(paths)} clips ({time.time() - t0:.0f} s)", flush=True)
    vectors = np.stack(out).astype(np.float64)
    np.savez(saved, vectors=vectors, paths=paths)
    return vectors


def run(args) -> None:
    from ser_model.recipe import load_head_recipe
    from ser_model.tf_quiet import import_tensorflow
    from ser_model.train_v3 import fit_head, score_protocols

    s = load_head_recipe(ROOT / "ser_model" / "configs" / "ser-v3-final.toml")
    s = replace(s, **{k: _value(v) for k, v in (kv.split("=", 1) for kv in args.set)})
    factors = [float(f) for f in args.factors.split(",")]
    cache = Path(args.cache)
    bank = load_bank(cache, s.threads)
    rav = np.flatnonzero(bank.corpora == "ravdess")
    copies = [(f, speed_copies(bank, cache, f, s.threads)) for f in factors]
    import_tensorflow(s.threads)

    def fit_score(train, test, seed):
        keep = train[rav]  # copies of training clips only: never of a tested actor
        xs, ys, spk, corp = [bank.vectors[train]], [bank.labels[train]], [bank.speakers[train]], [bank.corpora[train]]
        for f, vec in copies:
            xs.append(vec[keep])
            ys.append(bank.labels[rav][keep])
            spk.append(np.char.add(bank.speakers[rav][keep], f"@{f:g}"))
            corp.append(bank.corpora[rav][keep])
        assert not np.isin(bank.speakers[test], np.concatenate(spk)).any()
        head = fit_head(np.concatenate(xs), np.concatenate(ys), np.concatenate(spk), np.concatenate(corp), s)
        return score_protocols(head, bank.vectors[test], bank.speakers[test], adapt_k=s.adapt_k, seed=seed)

    run_and_save(bank, s, fit_score, args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    run_arguments(r)
    r.add_argument("--factors", default="0.9,1.1", help="speed factors of the copies (default 0.9,1.1)")
    args = ap.parse_args()
    run(args)


if __name__ == "__main__":
    main()
