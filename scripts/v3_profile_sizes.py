"""How the ser-v3 recipe does as a new user's voice profile fills: CV UAR and false alarms at
profile sizes K = 0, 1, 3, 5, 10, for population-prior strengths and seeds (not part of the
shipped path; the shipped numbers come from ``ser-model train``).

    SER_DATASETS=../shared/datasets python scripts/v3_profile_sizes.py \\
        --config ser_model/configs/ser-v3.toml --cache DIR --strengths 2,5 --seeds 0,1,2

The same 5-fold RAVDESS-actor CV as ``ser-model train`` (TESS only in training): each fold's
head is trained once, then every test clip is scored with a profile of K other clips of its
speaker (drawn with a fixed seed per fold and K, labels never read). Probabilities are
temperature-scaled by ``--temperature`` (the shipped bundle's 2.25) before the false-alarm
rate: neutral/calm clips labelled sad/angry/fearful/disgust with confidence >= ``--min-confidence``.
Features come from ``--cache`` (a ``ser-model train --cache`` folder; missing ones are extracted,
~10 min on 2 cores for all clips). About 2 minutes per strength and seed for layers 1 + 4.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KS = (0, 1, 3, 5, 10)


def _numbers(cast):
    return lambda text: [cast(x) for x in text.split(",") if x]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "ser_model" / "configs" / "ser-v3.toml")
    ap.add_argument("--cache", type=Path, required=True, help="feature cache folder")
    ap.add_argument("--strengths", type=_numbers(float), default=[5.0], help="comma-separated, e.g. 2,5")
    ap.add_argument("--seeds", type=_numbers(int), default=[0])
    ap.add_argument("--temperature", type=float, default=2.25)
    ap.add_argument("--min-confidence", type=float, default=0.65)
    args = ap.parse_args()

    from ser_model import v3
    from ser_model.compare import make_folds
    from ser_model.corpora import scan
    from ser_model.recipe import load_head_recipe
    from ser_model.tf_quiet import import_tensorflow
    from ser_model.train_v3 import build_bank, false_alarms, fit_rows, metrics, training_rows, unique_clips

    base = load_head_recipe(args.config)
    import_tensorflow(base.threads)
    data = Path(os.environ.get("SER_DATASETS") or ROOT.parent / "shared" / "datasets")
    bank = build_bank(unique_clips(scan(data).clips), cache_dir=args.cache, threads=base.threads,
                      progress=True, layers=base.encoder_layers)
    folds = make_folds(bank.speakers[bank.corpora == "ravdess"], base.n_folds)
    print(f"layers {list(base.encoder_layers)}, T {args.temperature:g}, false alarms at {args.min_confidence:g}")
    for strength in args.strengths:
        for seed in args.seeds:
            s = replace(base, strength=strength, seed=seed)
            t0 = time.time()
            probs = {k: np.zeros((len(bank.labels), 7)) for k in KS}
            tested = np.zeros(len(bank.labels), dtype=bool)
            for i, actors in enumerate(folds):
                test = np.isin(bank.speakers, actors)
                head = fit_rows(training_rows(bank, np.isin(bank.corpora, s.corpora) & ~test), s)
                for k in KS:
                    rng = np.random.default_rng(seed + i + 1000 + 7 * k)
                    x, _ = v3.adapted_inputs(bank.vectors[test], bank.speakers[test], k=k, norm_mean=head.norm_mean,
                                             norm_std=head.norm_std, prior=head.prior, rng=rng)
                    probs[k][test] = head.predict(x)
                tested |= test
            y = bank.labels[tested]
            cells = []
            for k in KS:
                p = v3.tempered(probs[k][tested], args.temperature)
                fa = 100 * false_alarms(y, p, args.min_confidence)
                cells.append(f"K={k} {metrics(y, p)['uar']:.3f} ({fa:.1f} %)")
            print(f"strength {strength:g} seed {seed}: " + " | ".join(cells) + f"  [{time.time() - t0:.0f} s]",
                  flush=True)


if __name__ == "__main__":
    main()
