"""Which Whisper encoder layers to read for emotion: a quick logistic-regression screen
(not part of the shipped path; the shipped numbers come from ``ser-model train``).

    SER_DATASETS=../shared/datasets python scripts/v3_layers.py extract --out layers.npz
    python scripts/v3_layers.py score layers.npz L4+pros L2+pros L1+L2+L3+L4+pros ct2+pros

``extract`` pools (mean and std over time) each encoder layer's output of every RAVDESS and
TESS clip (``L0`` = after the convolutions and positions, ``L1``..``L4`` = after each layer,
``L5`` = after the final layer norm; ``ser_model.whisper_layers``), the int8 CTranslate2
encoder output the features read before (``ct2``), and the 27 prosody statistics (``pros``);
about 5 minutes on 2 cores. ``score`` prints, for each set of blocks joined by ``+``, the UAR of
a logistic regression (C = 0.05, features standardised on the training rows, RAVDESS weight 2)
on the 5-fold RAVDESS-actor CV with TESS in training (``un_cv``) and trained on RAVDESS alone,
scored on TESS (``un_x``); ``ad_cv`` / ``ad_x``: the same after standardising every speaker's
features by that speaker's own clips (all of them, test clip included: an optimistic stand-in
for the shipped adapted protocol, which uses 10 other clips shrunk toward the population).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WIDTH = 2 * 384


def extract(out: Path) -> None:
    from ser_model import encoder_features as ef
    from ser_model.audio import load_audio
    from ser_model.corpora import scan
    from ser_model.train_v3 import unique_clips
    from ser_model.whisper_layers import shared_layers
    from ser_model.whisper_model import shared_whisper

    data = Path(os.environ.get("SER_DATASETS") or ROOT.parent / "shared" / "datasets")
    clips = [c for c in unique_clips(scan(data).clips) if c.corpus in ("ravdess", "tess")]
    model, layers = shared_whisper(cpu_threads=1), shared_layers()
    rows, meta = [], []
    for i, c in enumerate(clips):
        y = load_audio(c.path, sample_rate=16000)
        mel = ef.log_mel(model, y)
        outs = layers(mel)
        pooled = [np.concatenate([o.mean(0), o.std(0)])
                  for o in (layers.embed(mel), *outs, ef.encoder_frames(model, y))]
        rows.append(np.concatenate([*pooled, ef.prosody_stats(y)]).astype(np.float32))
        meta.append((c.corpus, c.speaker, c.label))
        if i % 500 == 499:
            print(f"  {i + 1}/{len(clips)}", flush=True)
    np.savez(out, X=np.stack(rows), meta=np.array(meta))
    print(f"wrote {out} ({len(rows)} clips)")


def score(path: Path, sets: list[str]) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import recall_score

    z = np.load(path, allow_pickle=False)
    x_all, meta = z["X"], z["meta"]
    corpus, speaker, label = meta[:, 0], meta[:, 1], meta[:, 2]
    blocks = {f"L{i}": slice(i * WIDTH, (i + 1) * WIDTH) for i in range(6)}
    blocks["ct2"] = slice(6 * WIDTH, 7 * WIDTH)
    blocks["pros"] = slice(7 * WIDTH, x_all.shape[1])
    actors = sorted(set(speaker[corpus == "ravdess"]))
    folds = [actors[4 * i: 4 * i + 4] for i in range(5)]

    def per_speaker(f: np.ndarray) -> np.ndarray:
        g = f.copy()
        for s in np.unique(speaker):
            r = speaker == s
            g[r] = (f[r] - f[r].mean(0)) / (f[r].std(0) + 1e-3 * f.std(0) + 1e-6)
        return g

    def fit_predict(f, train, test, weights=None):
        mu, sd = f[train].mean(0), f[train].std(0) + 1e-6
        clf = LogisticRegression(C=0.05, max_iter=2000).fit((f[train] - mu) / sd, label[train], sample_weight=weights)
        return clf.predict((f[test] - mu) / sd)

    for name in sets:
        try:
            f = np.concatenate([x_all[:, blocks[b]] for b in name.split("+")], axis=1)
        except KeyError as err:
            raise SystemExit(f"v3_layers: unknown block {err} (known: {', '.join(blocks)})") from None
        res = {}
        for mode, g in (("un", f), ("ad", per_speaker(f))):
            ys, ps = [], []
            for actors_out in folds:
                test = np.isin(speaker, actors_out)
                w = np.where(corpus[~test] == "ravdess", 2.0, 1.0)
                ys.append(label[test])
                ps.append(fit_predict(g, ~test, test, w))
            res[f"{mode}_cv"] = recall_score(np.concatenate(ys), np.concatenate(ps), average="macro")
            res[f"{mode}_x"] = recall_score(label[corpus == "tess"],
                                            fit_predict(g, corpus == "ravdess", corpus == "tess"), average="macro")
        print(name, " ".join(f"{k} {v:.3f}" for k, v in res.items()), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract", help="pool every layer's output of every clip")
    e.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("score", help="logistic-regression UARs of layer sets")
    s.add_argument("features", type=Path)
    s.add_argument("sets", nargs="+", help="blocks joined by +: L0..L5, ct2, pros")
    args = ap.parse_args()
    if args.cmd == "extract":
        extract(args.out)
    else:
        score(args.features, args.sets)


if __name__ == "__main__":
    main()
