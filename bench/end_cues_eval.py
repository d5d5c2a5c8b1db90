"""Do how the speech ends (pitch, lengthening, fading energy) tell a finished sentence from a
cut one better than Whisper's sentence-end probability alone? Offline, on the clips of
``bench/sentence_end_eval.py`` (whole sentences and the same sentences cut at each word
boundary), from RAVDESS and from TESS ("Say the word ...", other speakers and words).

A logistic regression reads the logit of Whisper's end probability, alone or with the end
cues below (from ``ser_model.encoder_features.frame_analysis`` of the audio before the pause).
Scored three ways: 5-fold RAVDESS-actor cross-validation, trained on RAVDESS and scored on
TESS, and the reverse. For each: AUC (whole vs cut) and, with the words rule
(``assistant.vad.continues``), cuts judged finished at thresholds that hold 2-10 % of the
whole sentences.

The answer measured on 2026-12-03 was no: the cues help inside RAVDESS and hurt across
corpora (they learn the corpus's sentence, not the end of a turn), so the endpointer does not
use them.

    .venv/bin/python bench/end_cues_eval.py [--every-ravdess 4] [--every-tess 14]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

CUE_NAMES: tuple[str, ...] = (
    "final_f0_vs_median", "final_f0_slope", "last_voiced_run", "final_energy", "unvoiced_tail",
    "final_f0_vs_p10", "energy_std", "final_f0_std",
)


def end_cues(y: np.ndarray) -> np.ndarray:
    """Over the last 250 ms of voicing: the final F0 (median of the last 5 voiced frames)
    against the utterance's median and 10th percentile (semitones), the F0 slope (semitones
    per 100 ms) and spread; the last voiced run (100 ms units); the final energy against the
    loudest frame (10 dB units); loud unvoiced frames after the last voiced one (100 ms); the
    energy spread of the loud frames (10 dB). Zeros when fewer than 5 frames are voiced."""
    from ser_model.encoder_features import frame_analysis

    a = frame_analysis(y)
    idx = np.flatnonzero(a.voiced)
    if idx.size < 5:
        return np.zeros(len(CUE_NAMES))
    st, e = a.f0_st, a.energy
    tail = idx[idx >= idx[-1] - 25]
    final = float(np.median(st[tail[-5:]]))
    slope = float(np.polyfit(tail * 0.1, st[tail], 1)[0]) if tail.size > 3 else 0.0
    gaps = np.flatnonzero(np.diff(idx) > 2)
    run = idx.size - (gaps[-1] + 1 if gaps.size else 0)
    return np.array([
        final - float(np.median(st[a.voiced])), slope, run / 10.0,
        (float(np.mean(e[tail[-10:]])) - float(e[a.loud].max())) / 10.0,
        (int(np.flatnonzero(a.loud)[-1]) - int(idx[-1])) / 10.0,
        final - float(np.percentile(st[a.voiced], 10)), float(e[a.loud].std()) / 10.0, float(np.std(st[tail])),
    ])


def table(rows) -> dict[str, np.ndarray]:
    """Features, labels, words rule and speaker of each collected pause."""
    from assistant import vad
    from tests.joined_clips import _load

    cues, loaded = [], {}
    for r in rows:
        if r.path not in loaded:
            loaded = {r.path: _load(r.path)}
        cues.append(end_cues(loaded[r.path][: r.end]))
    p = np.clip([0.5 if r.end_prob is None else r.end_prob for r in rows], 1e-4, 1 - 1e-4)
    spk = [r.path.parent.name if r.path.parent.name.startswith("Actor_") else r.path.name.split("_")[0]
           for r in rows]
    return {"X": np.column_stack([np.log(p / (1 - p)), np.array(cues)]), "y": np.array([r.whole for r in rows], int),
            "words": np.array([vad.continues(r.text) for r in rows]), "speaker": np.array(spk)}


def _model():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def report(name: str, score: np.ndarray, d: dict[str, np.ndarray]) -> None:
    from sklearn.metrics import roc_auc_score

    y, words = d["y"], d["words"]
    cells = []
    for q in (0.02, 0.04, 0.06, 0.08, 0.10):
        goes = words | (score < np.quantile(score[y == 1], q))
        cells.append(f"{goes[y == 1].mean():.3f}/{(~goes[y == 0]).mean():.3f}")
    print(f"  {name:<34} AUC {roc_auc_score(y, score):.3f}   " + "  ".join(cells))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every-ravdess", type=int, default=4, help="every N-th RAVDESS clip (default 4)")
    ap.add_argument("--every-tess", type=int, default=14, help="every N-th TESS clip (default 14)")
    ap.add_argument("--datasets", default=os.environ.get("SER_DATASETS", str(REPO.parent / "shared" / "datasets")))
    args = ap.parse_args()
    from sentence_end_eval import collect

    data = Path(args.datasets)
    rav_files = sorted((data / "ravdess").glob("Actor_*/*.flac"))[:: args.every_ravdess]
    tess_files = sorted((data / "tess").rglob("*.flac"))[:: args.every_tess]
    if not rav_files or not tess_files:
        print(f"need RAVDESS and TESS clips under {data}", file=sys.stderr)
        return 1
    rav, tess = table(collect(rav_files)[0]), table(collect(tess_files)[0])
    sets = {"end probability": [0], "+ all end cues": list(range(1 + len(CUE_NAMES))),
            "+ final energy": [0, 1 + CUE_NAMES.index("final_energy")],
            "+ energy, run, pitch": [0, 1, 2, 3, 4]}
    print(f"RAVDESS: {rav['y'].sum()} whole / {(1 - rav['y']).sum()} cut; TESS: {tess['y'].sum()} whole / "
          f"{(1 - tess['y']).sum()} cut. Cells: whole sentences held / cuts judged finished, at thresholds "
          "holding 2, 4, 6, 8, 10 % of whole sentences (with the words rule)")
    actors = sorted(set(rav["speaker"]))
    folds = [actors[i::5] for i in range(5)]
    runs = (("RAVDESS, 5-fold actor CV", None, rav), ("trained on RAVDESS, scored on TESS", rav, tess),
            ("trained on TESS, scored on RAVDESS", tess, rav))
    for title, fit, score in runs:
        print(title)
        for name, cols in sets.items():
            if fit is None:
                s = np.zeros(len(score["y"]))
                for f in folds:
                    te = np.isin(score["speaker"], f)
                    m = _model().fit(score["X"][~te][:, cols], score["y"][~te])
                    s[te] = m.decision_function(score["X"][te][:, cols])
            else:
                s = _model().fit(fit["X"][:, cols], fit["y"]).decision_function(score["X"][:, cols])
            report(name, s, score)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
