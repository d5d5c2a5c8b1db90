"""End-of-turn rules offline: how long after the last word the endpointer ends the turn, and
how often it ends too early, without the audio rig.

Clips: ``-n`` RAVDESS clips (``bench/turn_latency.pick_files``) plus one shouted clip, each
after 1 s of silence at 4 frame alignments, clean and with white noise at 20 and 10 dB SNR.
The reference end of speech is the last 20 ms frame within 35 dB of the clip's loudest
(``bench/turn_latency.speech_frames``). Per rule and condition: the end's lag past the
hang-over (median / p90), turns ended > 0.15 s before the reference, turns never ended.

    .venv/bin/python bench/endpoint_eval.py [-n 40] [--datasets ../shared/datasets]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant import vad  # noqa: E402
from bench.turn_latency import FRAME, pick_files, speech_frames  # noqa: E402

RULES = {
    "Silero >= 0.5 only (before)": dict(keep_prob=0.5, loud_db=None, quiet_db=None),
    "+ hysteresis + quiet gate": dict(loud_db=None),
    "+ loud frames (default)": dict(),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=40)
    ap.add_argument("--datasets", default=os.environ.get("SER_DATASETS", str(REPO.parent / "shared" / "datasets")))
    args = ap.parse_args()
    import soundfile as sf

    root = Path(args.datasets)
    files = [*pick_files(root, args.n), root / "ravdess" / "Actor_06" / "03-01-05-02-01-01-06.flac"]
    clips = [sf.read(str(f), dtype="float32")[0] for f in files]
    rng = np.random.default_rng(0)
    v = vad.make_vad("silero")
    for cond in ("clean", "noise 20 dB", "noise 10 dB"):
        for name, kw in RULES.items():
            settings = vad.EndpointSettings(**kw)
            lags, early, never, n = [], 0, 0, 0
            for y in clips:
                ref = (np.flatnonzero(speech_frames(y))[-1] + 1) * FRAME / 16000
                level = float(np.sqrt(np.mean(y[np.abs(y) > 0.01] ** 2))) if (np.abs(y) > 0.01).any() else 0.01
                for off in (0, 96, 192, 384):
                    x = np.concatenate([np.zeros(16000 + off, np.float32), y, np.zeros(24000, np.float32)])
                    if cond != "clean":
                        snr = float(cond.split()[1])
                        x = x + rng.normal(0, level * 10 ** (-snr / 20), len(x)).astype(np.float32)
                    v.reset()
                    ep = vad.Endpointer(v, settings)
                    end = None
                    for i in range(0, len(x) - 512, 512):
                        if ep.push(x[i:i + 512]) == "end":
                            end = (i + 512) / 16000 - 1 - off / 16000
                            break
                    n += 1
                    if end is None:
                        never += 1
                        continue
                    lag = end - settings.hangover_s - ref
                    if lag < -0.15:
                        early += 1
                    else:
                        lags.append(lag * 1000)
            print(f"{cond:<12} {name:<30} lag past the hang-over median {np.median(lags):5.0f} ms, "
                  f"p90 {np.percentile(lags, 90):5.0f} ms; ended early {early}/{n}; never ended {never}/{n}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
