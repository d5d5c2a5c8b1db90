"""Latency and memory of emotion inference: our EmotionRecognizer (numpy and keras backends)
vs the seed-style pipeline.

    .venv/bin/python bench/ser_latency.py [--model NAME_OR_PATH] [--clips 40] [--json]

Each pipeline runs in its own subprocess (so peak RSS figures do not mask each other), pinned
to ONE CPU core with TensorFlow at one intra-op and one inter-op thread. Inputs are 3-second
utterances cut from real RAVDESS clips in the shared corpora (``../shared/datasets`` or
``$SER_DATASETS``). Every pipeline is warmed up before timing.

- ``ser predict``: ``EmotionRecognizer.predict(samples, 16000)`` on the in-memory 3 s clip
  (prepare, silence check, frame features, normalisation, model), the assistant's path;
  measured twice, with the default ``numpy`` backend (no TensorFlow in the process) and with
  the ``keras`` backend (TensorFlow, XLA unless ``--no-xla``).
- ``ser predict with a profile`` (ser-v3 bundles): the same, with a 10-clip VoiceProfile; the
  Whisper encoder (one thread, the recognizer's own ``shared_whisper(cpu_threads=1)``) is inside.
- ``ser predict_file``: ``EmotionRecognizer.predict_file(path)`` on the same 3 s as a WAV file.
- ``seed``: what the original prototype did per file: ``librosa.load(path)`` (resampling to
  its default 22.05 kHz), the means of 40 MFCCs, and a small Keras dense network called with
  ``model.predict`` (untrained: only its cost matters here).

Reports the median and 90th percentile latency, the peak RSS of each subprocess, whether
TensorFlow was imported, and how many times slower the seed pipeline is (median vs median).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECONDS = 3.0
RATE = 16000
WARMUP = 5


def _datasets() -> Path:
    env = os.environ.get("SER_DATASETS")
    return Path(env) if env else REPO.parent / "shared" / "datasets"


def _pick_clips(n: int) -> list[Path]:
    """``n`` RAVDESS clips spread over actors and emotions (fixed choice: every k-th file)."""
    files = sorted((_datasets() / "ravdess").rglob("*.flac"))
    if not files:
        raise SystemExit(f"ser_latency: no RAVDESS clips under {_datasets() / 'ravdess'} (set SER_DATASETS)")
    step = max(1, len(files) // n)
    return files[::step][:n]


def _write_crops(clips: list[Path], out_dir: Path) -> list[Path]:
    """Cut the middle 3 s of each clip (16 kHz mono) into a 16-bit WAV in ``out_dir``."""
    import numpy as np
    import soundfile as sf

    paths = []
    n = int(SECONDS * RATE)
    for i, clip in enumerate(clips):
        y, rate = sf.read(clip, dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        if rate != RATE:
            raise SystemExit(f"ser_latency: {clip} is at {rate} Hz, expected {RATE}")
        if len(y) < n:
            y = np.pad(y, (0, n - len(y)))
        start = (len(y) - n) // 2
        path = out_dir / f"clip{i:03d}.wav"
        sf.write(path, y[start : start + n], RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def _pin_one_core() -> int:
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    os.environ["OMP_NUM_THREADS"] = "1"
    return core


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _time_calls(fn, items, repeats: int) -> list[float]:
    for item in items[:WARMUP]:
        fn(item)
    times = []
    for _ in range(repeats):
        for item in items:
            started = time.perf_counter()
            fn(item)
            times.append(time.perf_counter() - started)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000.0 for t in times)
    return {
        "median_ms": statistics.median(ms),
        "p90_ms": ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))],
        "calls": len(ms),
    }


def worker_ser(files: list[Path], model: str | None, repeats: int, jit: bool, backend: str) -> dict:
    core = _pin_one_core()
    import soundfile as sf

    started = time.perf_counter()
    from ser_model.recognizer import EmotionRecognizer

    rec = EmotionRecognizer.load(model, threads=1, jit=jit, backend=backend)
    load_s = time.perf_counter() - started
    audio = [sf.read(f, dtype="float32")[0] for f in files]
    predict = _summary(_time_calls(lambda y: rec.predict(y, RATE), audio, repeats))
    predict_file = _summary(_time_calls(rec.predict_file, files, repeats))
    with_profile = None
    if getattr(rec, "supports_profiles", False):  # ser-v3: the Whisper encoder runs inside predict
        profile = rec.new_profile()
        for y in audio[:10]:
            rec.adapt(profile, y, RATE)
        with_profile = _summary(_time_calls(lambda y: rec.predict(y, RATE, profile), audio, repeats))
    return {
        "predict_with_profile": with_profile,
        "pipeline": f"ser-{rec.backend}",
        "backend": rec.backend,
        "tensorflow_imported": "tensorflow" in sys.modules,
        "model_version": rec.model_version,
        "xla": rec.jit,
        "core": core,
        "load_s": load_s,
        "predict": predict,
        "predict_file": predict_file,
        "peak_rss_mb": _peak_rss_mb(),
    }


def worker_seed(files: list[Path], repeats: int) -> dict:
    core = _pin_one_core()
    started = time.perf_counter()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import librosa
    import numpy as np

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((40,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(8, activation="softmax"),
        ]
    )
    load_s = time.perf_counter() - started

    def predict(path: Path) -> int:
        y, sr = librosa.load(path)  # default: resample to 22.05 kHz, mono
        mfcc = np.mean(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40).T, axis=0)
        probs = model.predict(mfcc[None, :], verbose=0)
        return int(np.argmax(probs))

    return {
        "pipeline": "seed",
        "core": core,
        "load_s": load_s,
        "predict_file": _summary(_time_calls(predict, files, repeats)),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _run_worker(kind: str, files_dir: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--files", str(files_dir), "--repeats", str(args.repeats)]
    if args.model:
        cmd += ["--model", args.model]
    if not args.xla:
        cmd.append("--no-xla")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"ser_latency: {kind} worker failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(sers: list[dict], seed: dict) -> str:
    seed_ms = seed["predict_file"]["median_ms"]
    rows = [("pipeline", "median ms", "p90 ms", "seed / this", "peak RSS MB", "load s")]
    for ser in sers:
        tag = f"{ser['backend']}{', XLA' if ser['xla'] else ''}{', TF loaded' if ser['tensorflow_imported'] else ''}"
        rows += [
            (f"ser predict ({ser['model_version']}, {tag})",
             f"{ser['predict']['median_ms']:.2f}", f"{ser['predict']['p90_ms']:.2f}",
             f"{seed_ms / ser['predict']['median_ms']:.1f}x", f"{ser['peak_rss_mb']:.0f}", f"{ser['load_s']:.1f}"),
            *([(f"ser predict with a 10-clip profile ({ser['backend']})",
                 f"{ser['predict_with_profile']['median_ms']:.2f}", f"{ser['predict_with_profile']['p90_ms']:.2f}",
                 f"{seed_ms / ser['predict_with_profile']['median_ms']:.1f}x", "", "")]
              if ser.get("predict_with_profile") else []),
            (f"ser predict_file (3 s WAV, {ser['backend']})", f"{ser['predict_file']['median_ms']:.2f}",
             f"{ser['predict_file']['p90_ms']:.2f}", f"{seed_ms / ser['predict_file']['median_ms']:.1f}x", "", ""),
        ]
    rows.append(
        (
            "seed (librosa 22.05k, 40 MFCC means, model.predict)",
            f"{seed_ms:.2f}",
            f"{seed['predict_file']['p90_ms']:.2f}",
            "1.0x",
            f"{seed['peak_rss_mb']:.0f}",
            f"{seed['load_s']:.1f}",
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="bundle name or folder (default: the shipped model)")
    parser.add_argument("--clips", type=int, default=40, help="number of 3 s clips (default 40)")
    parser.add_argument("--repeats", type=int, default=2, help="passes over the clips (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--no-xla", dest="xla", action="store_false",
                        help="load the recognizer with jit=False (default: its default, XLA on)")
    parser.add_argument("--backends", default="numpy,keras",
                        help="recognizer backends to measure, comma-separated (default numpy,keras)")
    parser.add_argument("--worker", choices=["ser-numpy", "ser-keras", "ser-auto", "seed"], help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        files = sorted(args.files.glob("*.wav"))
        if args.worker == "seed":
            result = worker_seed(files, args.repeats)
        else:
            result = worker_ser(files, args.model, args.repeats, args.xla, args.worker.split("-", 1)[1])
        print(json.dumps(result))
        return 0

    clips = _pick_clips(args.clips)
    with tempfile.TemporaryDirectory(prefix="ser-latency-") as tmp:
        _write_crops(clips, Path(tmp))
        sers = [_run_worker(f"ser-{b.strip()}", Path(tmp), args) for b in args.backends.split(",") if b.strip()]
        seed = _run_worker("seed", Path(tmp), args)
    seed_ms = seed["predict_file"]["median_ms"]
    report = {
        "clips": len(clips),
        "seconds_per_clip": SECONDS,
        "ser": {s["backend"]: s for s in sers},
        "seed": seed,
        "seed_over_ser_predict": {s["backend"]: seed_ms / s["predict"]["median_ms"] for s in sers},
        "seed_over_ser_predict_file": {s["backend"]: seed_ms / s["predict_file"]["median_ms"] for s in sers},
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"{len(clips)} real RAVDESS clips cut to {SECONDS:.0f} s, {args.repeats} passes, one CPU core, TF threads = 1"
    )
    print(_table(sers, seed))
    for s in sers:
        print(
            f"seed pipeline / ser predict ({s['backend']}): {report['seed_over_ser_predict'][s['backend']]:.1f}x "
            f"slower (median); vs ser predict_file: {report['seed_over_ser_predict_file'][s['backend']]:.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
