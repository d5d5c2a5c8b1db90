"""Silero VAD against WebRTC VAD on our audio: which one should end the user's turn.

Reference: on each clean RAVDESS clip (one per actor, studio-quiet), a 10 ms frame is speech
when its energy is within 35 dB of the clip's loudest frame. Each VAD then hears the clip
under a condition, and is scored against that reference:

- ``clean``; ``noise 10 dB`` / ``noise 0 dB``: white noise added at that SNR (of the speech
  frames); ``quiet -30 dB``: the clip at 3 % gain (a quiet speaker far from the microphone);
- ``quiet+noise``: -30 dB gain over a -60 dBFS noise floor;
- ``breaths``: no speech at all, band-passed noise bursts (300-600 ms, breath-like) over a
  low floor: every voiced frame is a false alarm.

Per VAD and condition: frame accuracy, speech recall, false-alarm rate (voiced frames where the
reference has none), and utterance onset / offset error (first / last voiced frame against the
reference's, median absolute ms; "miss" when nothing was found), plus the CPU per frame.

    .venv/bin/python bench/vad_eval.py [-n 20] [--vads silero,webrtc1,webrtc2,webrtc3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.vad import SPEECH_PROB, make_vad  # noqa: E402

RATE = 16000
REF = 160  # 10 ms reference frames


def reference(y: np.ndarray) -> np.ndarray:
    n = len(y) // REF
    e = (y[: n * REF].reshape(n, REF).astype(np.float64) ** 2).mean(axis=1) + 1e-12
    db = 10 * np.log10(e)
    return db > db.max() - 35


def clips(datasets: Path, n: int) -> list[np.ndarray]:
    import soundfile as sf

    actors = sorted((datasets / "ravdess").glob("Actor_*"))
    out = []
    for i in range(n):
        files = sorted(actors[i % len(actors)].glob("*.flac"))
        y, sr = sf.read(str(files[(i * 11) % len(files)]), dtype="float32")
        assert sr == RATE
        out.append(y)
    return out


def condition(name: str, y: np.ndarray, ref: np.ndarray, rng) -> np.ndarray:
    if name == "clean":
        return y
    speech_pow = float(np.mean(y[: len(ref) * REF].reshape(-1, REF)[ref] ** 2))
    if name.startswith("noise"):
        snr = float(name.split()[1])
        noise = rng.standard_normal(len(y)).astype(np.float32) * np.sqrt(speech_pow / 10 ** (snr / 10))
        return np.clip(y + noise, -1, 1)
    if name == "quiet -30 dB":
        return y * 10 ** (-30 / 20)
    if name == "quiet+noise":
        return y * 10 ** (-30 / 20) + rng.standard_normal(len(y)).astype(np.float32) * 1e-3
    raise ValueError(name)


def breaths(rng, seconds: float = 4.0) -> np.ndarray:
    """Breath-like bursts: noise band-passed to 300-2500 Hz, 300-600 ms, rising and falling."""
    from scipy.signal import butter, sosfilt

    y = rng.standard_normal(int(seconds * RATE)).astype(np.float32) * 3e-4
    sos = butter(4, [300, 2500], btype="band", fs=RATE, output="sos")
    t = 0.3
    while t < seconds - 0.7:
        d = rng.uniform(0.3, 0.6)
        n = int(d * RATE)
        burst = sosfilt(sos, rng.standard_normal(n)).astype(np.float32)
        burst *= np.hanning(n).astype(np.float32) * rng.uniform(0.02, 0.08) / (np.abs(burst).max() + 1e-9)
        i = int(t * RATE)
        y[i:i + n] += burst
        t += d + rng.uniform(0.5, 1.0)
    return y


def score(vad, y: np.ndarray, ref: np.ndarray) -> dict:
    t0 = time.perf_counter()
    p = vad.probs(y) >= SPEECH_PROB
    per_frame_ms = (time.perf_counter() - t0) * 1000 / max(1, len(p))
    k = vad.frame_samples // REF  # reference frames per VAD frame (3 for 30 ms, 3.2 for 32 ms)
    idx = (np.arange(len(p))[:, None] * vad.frame_samples / REF + np.arange(k)[None, :]).astype(int)
    idx = np.minimum(idx, len(ref) - 1)
    truth = ref[idx].mean(axis=1) >= 0.5
    out = {"acc": float((p == truth).mean()), "ms_per_frame": per_frame_ms,
           "recall": float(p[truth].mean()) if truth.any() else None,
           "false_alarm": float(p[~truth].mean()) if (~truth).any() else None}
    fs_ms = vad.frame_samples / RATE * 1000
    if truth.any():
        on = np.flatnonzero(p)
        t_on, t_off = np.flatnonzero(truth)[[0, -1]]
        if len(on):
            out["onset_ms"] = abs(int(on[0]) - int(t_on)) * fs_ms
            out["offset_ms"] = abs(int(on[-1]) - int(t_off)) * fs_ms
        else:
            out["onset_ms"] = out["offset_ms"] = None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20, help="RAVDESS clips (one per actor; default 20)")
    ap.add_argument("--vads", default="silero,webrtc1,webrtc2,webrtc3")
    ap.add_argument("--datasets", default=os.environ.get("SER_DATASETS", str(REPO.parent / "shared" / "datasets")))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ys = clips(Path(args.datasets), args.n)
    refs = [reference(y) for y in ys]
    conds = ["clean", "noise 10", "noise 0", "quiet -30 dB", "quiet+noise"]
    audio = {c: [condition(c, y, r, rng) for y, r in zip(ys, refs)] for c in conds}
    audio["breaths"] = [breaths(rng) for _ in range(max(4, args.n // 4))]
    ref_for = {c: refs for c in conds}
    ref_for["breaths"] = [np.zeros(len(y) // REF, bool) for y in audio["breaths"]]
    print(f"VAD frame scores on {args.n} RAVDESS clips (reference: clean-clip energy within 35 dB of its peak)")
    print(f"{'vad':<9} {'condition':<13} {'acc':>6} {'recall':>7} {'f.alarm':>8} {'onset ms':>9} "
          f"{'offset ms':>10} {'missed':>7}")
    for name in args.vads.split(","):
        vad = make_vad(name)
        cost = []
        for c, ys_c in audio.items():
            rows = [score(vad, y, r) for y, r in zip(ys_c, ref_for[c])]
            cost += [r["ms_per_frame"] for r in rows]

            def mean(key, rows=rows):
                xs = [r[key] for r in rows if r.get(key) is not None]
                return statistics.mean(xs) if xs else float("nan")

            def med(key, rows=rows):
                xs = [r[key] for r in rows if r.get(key) is not None]
                return statistics.median(xs) if xs else float("nan")

            missed = sum(1 for r in rows if "onset_ms" in r and r["onset_ms"] is None)
            print(f"{name:<9} {c:<13} {mean('acc'):6.3f} {mean('recall'):7.3f} {mean('false_alarm'):8.3f} "
                  f"{med('onset_ms'):9.0f} {med('offset_ms'):10.0f} {missed:>7}")
        print(f"{name:<9} cpu {statistics.median(cost):.3f} ms per frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
