"""Screen: does training the ser-v3 head on sub-utterance crops as well as whole clips help on
new voices? (Not part of the shipped path; the shipped numbers come from ``ser-model train``.)

    SER_DATASETS=../shared/datasets python scripts/v3_crops.py --cache DIR --crops 0,2

Each training clip also gives ``--crops`` random crops of 50-80 % of its length: the mean / std of
its encoder frames over the crop (the frames of the whole clip, so each keeps its context) and
the prosody of the same stretch of audio. Each crop set is a speaker of its own
(``ravdess:01@crop1``, like the speed and channel copies of ``train_v3.training_copies``), so no
profile draws a crop of the clip it is built for. Test clips stay whole. Then the recipe's own
5-fold RAVDESS-actor CV and the RAVDESS -> TESS proxy, both protocols (``train_v3.cross_validate``,
``cross_corpus``), one row per ``--crops`` value, in one process. Features come from ``--cache``
(a ``ser-model train --cache`` folder; ~5 min on 2 cores to fill for layers 1 + 4).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HOP = 320  # samples per encoder frame (20 ms at 16 kHz)


def crop_bank(clips, n_crops: int, layers, cache: Path, seed: int):
    from ser_model.audio import load_audio
    from ser_model.encoder_features import SAMPLE_RATE, clip_features, pool, prosody_stats
    from ser_model.labels import LABELS
    from ser_model.train_v3 import Bank

    rng = np.random.default_rng(seed)
    vecs, labels, speakers, corpora, paths = [], [], [], [], []
    for i, clip in enumerate(clips):
        frames, _ = clip_features(None, clip.path, cache_dir=cache, layers=layers)  # filled by build_bank
        y = load_audio(clip.path, sample_rate=SAMPLE_RATE)
        n = len(frames)
        for j in range(1, n_crops + 1):
            m = max(8, int(round(n * rng.uniform(0.5, 0.8))))
            a = int(rng.integers(0, max(1, n - m + 1)))
            vecs.append(pool(frames[a:a + m].astype(np.float32), prosody_stats(y[a * HOP:(a + m) * HOP])))
            labels.append(LABELS.index(clip.label))
            speakers.append(f"{clip.speaker}@crop{j}")
            corpora.append(clip.corpus)
            paths.append(str(clip.path))
        if i % 1000 == 999:
            print(f"  crops {i + 1}/{len(clips)}", flush=True)
    return Bank(np.stack(vecs).astype(np.float64), np.array(labels), np.array(speakers), np.array(corpora), paths)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "ser_model" / "configs" / "ser-v3.toml")
    ap.add_argument("--cache", type=Path, required=True, help="feature cache folder")
    ap.add_argument("--crops", default="0,2", help="comma-separated crops per training clip, e.g. 0,2")
    args = ap.parse_args()

    from ser_model.corpora import scan
    from ser_model.recipe import load_head_recipe
    from ser_model.tf_quiet import import_tensorflow
    from ser_model.train_v3 import build_bank, cross_corpus, cross_validate, unique_clips

    s = load_head_recipe(args.config)
    import_tensorflow(s.threads)
    data = Path(os.environ.get("SER_DATASETS") or ROOT.parent / "shared" / "datasets")
    clips = unique_clips(scan(data).clips)
    bank = build_bank(clips, cache_dir=args.cache, threads=s.threads, progress=True, layers=s.encoder_layers)
    print(f"layers {list(s.encoder_layers)}, head {s.head}, strength {s.strength:g}, seed {s.seed}")
    for n in [int(x) for x in args.crops.split(",") if x]:
        t0 = time.time()
        copies = crop_bank(clips, n, s.encoder_layers, args.cache, s.seed) if n else None
        cv = cross_validate(bank, s, copies=copies, log=lambda _m: None)
        xc = cross_corpus(bank, s, copies=copies)
        print(f"crops {n}: CV {cv['unadapted']['uar']:.3f} / {cv['adapted']['uar']:.3f} "
              f"(folds {cv['unadapted']['uar_folds']}), RAVDESS -> TESS {xc['unadapted']['uar']:.3f} / "
              f"{xc['adapted']['uar']:.3f}  [{time.time() - t0:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
