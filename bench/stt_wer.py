"""Word error rate and median decode time per installed STT engine, on the same clips.

A fixed, seeded selection of ``../shared`` clips: RAVDESS sentences across actors ("Kids are
talking by the door" / "Dogs are sitting by the door") and TESS "Say the word ...".

    .venv/bin/python bench/stt_wer.py [--clips 24] [--engines whisper,sphinx] [--seed 0]
        [--whisper-mode short|padded]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RAVDESS_SENTENCES = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}


def normalise(text: str) -> list[str]:
    """Lowercase, punctuation stripped, split on white space."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).replace("'", "").split()


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(edit distance in words, reference words)."""
    r, h = normalise(ref), normalise(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)], len(r)


def wer(pairs) -> float:
    errs = refs = 0
    for ref, hyp in pairs:
        e, n = word_errors(ref, hyp)
        errs, refs = errs + e, refs + n
    return errs / max(refs, 1)


def reference(path: Path) -> str:
    if path.name.count("-") == 6:  # RAVDESS: modality-channel-emotion-intensity-statement-rep-actor
        return RAVDESS_SENTENCES[path.stem.split("-")[4]]
    word = path.stem.split("_")[1]  # TESS: OAF_back_angry
    return f"say the word {word}"


def pick_clips(datasets: Path, n: int, seed: int = 0) -> list[Path]:
    """About 2/3 RAVDESS (several actors), 1/3 TESS, reproducible for a seed."""
    rng = random.Random(seed)
    rav = sorted((datasets / "ravdess").glob("Actor_*/*.flac"))
    tess = sorted((datasets / "tess").glob("*/*.flac"))
    n_tess = n // 3
    return sorted(rng.sample(rav, n - n_tess)) + sorted(rng.sample(tess, n_tess))


def datasets_dir() -> Path:
    env = os.environ.get("SER_DATASETS")
    for p in ([Path(env)] if env else []) + [REPO.parent / "shared" / "datasets",
                                             Path("/work/shared/datasets")]:
        if (p / "ravdess").is_dir():
            return p
    raise SystemExit("stt_wer: corpora not found (set SER_DATASETS)")


def make_engine(name: str, mode: str, threads: int | None = None):
    from assistant import stt

    if name == "whisper":
        return stt.WhisperTranscriber(None, background=False, mode=mode, cpu_threads=threads)
    if name == "sphinx":
        return stt.SphinxTranscriber()
    raise SystemExit(f"stt_wer: unknown engine {name}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--engines", default="whisper,sphinx")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--whisper-mode", default="short", choices=("short", "padded"))
    ap.add_argument("--whisper-threads", default="",
                    help="comma-separated CTranslate2 thread counts to compare, e.g. 1,2 (default: the "
                         "assistant's, one less than the cores)")
    ap.add_argument("--join", default="",
                    help="comma-separated sentence counts, e.g. 2,3,4: each utterance is that many clips "
                         "(cycling through the counts) with 0.25 s of silence between them")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each transcript")
    args = ap.parse_args()
    import numpy as np

    from assistant.types import Utterance
    from ser_model.audio import load_audio

    counts = [int(k) for k in args.join.split(",") if k] or [1]
    per = [counts[i % len(counts)] for i in range(args.clips)]
    picked = pick_clips(datasets_dir(), sum(per), args.seed)
    clips, refs, audio = [], [], []
    gap = np.zeros(4000, np.float32)
    for i, k in enumerate(per):
        group = picked[sum(per[:i]): sum(per[:i]) + k]
        clips.append(group[0])
        refs.append(" ".join(reference(p) for p in group))
        audio.append(np.concatenate([x for p in group for x in (load_audio(str(p)), gap)][:-1]))
    rows = []
    threads = [int(t) for t in args.whisper_threads.split(",") if t] or [None]
    runs = [(name, t) for name in args.engines.split(",") for t in (threads if name == "whisper" else [None])]
    for name, n_threads in runs:
        eng = make_engine(name, args.whisper_mode, n_threads)
        pairs, times = [], []
        for path, ref, y in zip(clips, refs, audio):
            utt = Utterance(samples=y, sample_rate=16000, source="file", ended_at=time.time())
            t0 = time.perf_counter()
            tr = eng.transcribe(utt)
            times.append(time.perf_counter() - t0)
            pairs.append((ref, tr.text))
            if args.verbose:
                print(f"  {name:8s} {path.name:28s} {tr.text!r}")
        eng.close()
        label = f"{name} ({args.whisper_mode})" if name == "whisper" else name
        if n_threads is not None:
            label += f" {n_threads}t"
        rows.append((label, wer(pairs), statistics.median(times)))
    joined = f" of {args.join} clips each" if args.join else ""
    print(f"{len(clips)} utterances{joined} (seed {args.seed}); {os.cpu_count()} cores")
    print(f"{'engine':18s} {'WER':>6s} {'median decode':>14s}")
    for label, w, t in rows:
        print(f"{label:18s} {w:6.3f} {t * 1000:11.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
