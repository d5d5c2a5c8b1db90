"""Whisper decode's log-mel: faster-whisper's extractor on the utterance with ``PAD_S`` of silence
appended (as the decode did before) against ``WhisperTranscriber._padded_log_mel`` (only the
frames that see the audio computed), on the same RAVDESS sentences, in the same process.
Prints the medians, their ratio, and whether every result is bit-identical.

    .venv/bin/python bench/stt_features.py [--clips 12] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import numpy as np

    from assistant.stt import WhisperTranscriber
    from ser_model.audio import load_audio

    data = Path(os.environ.get("SER_DATASETS") or REPO.parent / "shared" / "datasets")
    files = sorted((data / "ravdess").glob("Actor_*/*.flac"))
    if not files:
        print(f"stt_features: no RAVDESS clips under {data}", file=sys.stderr)
        return 2
    files = files[:: max(1, len(files) // args.clips)][: args.clips]
    tr = WhisperTranscriber(background=False)
    fe = tr._model.feature_extractor
    pad = np.zeros(int(tr.PAD_S * tr.sample_rate), np.float32)
    ys = [load_audio(f) for f in files]
    times: dict[str, list[float]] = {"whole padded audio": [], "audio only": []}
    same = True
    for _ in range(args.repeats):
        for y in ys:
            t0 = time.perf_counter()
            whole = fe(np.concatenate([y, pad]))
            t1 = time.perf_counter()
            mine = tr._padded_log_mel(y)
            t2 = time.perf_counter()
            times["whole padded audio"].append(t1 - t0)
            times["audio only"].append(t2 - t1)
            same &= whole.shape == mine.shape and bool(np.array_equal(whole, mine))
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    secs = statistics.median(len(y) / tr.sample_rate for y in ys)
    print(f"{len(ys)} clips (median {secs:.2f} s), {args.repeats} repeats, PAD_S {tr.PAD_S:g} s")
    for k, v in med.items():
        print(f"  log-mel, {k:18s} median {v:6.2f} ms")
    print(f"  ratio {med['audio only'] / med['whole padded audio']:.2f}; bit-identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
