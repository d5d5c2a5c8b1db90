"""Turn latency through the real audio path: RAVDESS utterances played into a virtual microphone.

Starts a private PulseAudio daemon (``tests.audio_devices.PulseRig``), runs ``assistant``
(sphinx, the shipped emotion model, spoken replies on the virtual speaker) as a subprocess
pinned to ``--cores`` CPU cores, plays N utterances into the virtual microphone one at a time
(each after the previous turn has been logged, i.e. after the reply was spoken), then reads the
session log and prints the median ``latency_ms.total`` (end of utterance -> start of the spoken
reply) and the per-stage breakdown.

    .venv/bin/python bench/turn_latency.py [-n 20] [--cores 2] [--model PATH] [--no-speak]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.audio_devices import PulseRig  # noqa: E402


def pick_files(datasets: Path, n: int) -> list[Path]:
    """n RAVDESS clips spread over actors and emotions (deterministic)."""
    actors = sorted((datasets / "ravdess").glob("Actor_*"))
    files = []
    i = 0
    while len(files) < n:
        clips = sorted(actors[i % len(actors)].glob("*.flac"))
        files.append(clips[(i * 7) % len(clips)])
        i += 1
    return files


def count_turns(log_dir: Path) -> tuple[int, list[dict]]:
    logs = sorted(log_dir.glob("session-*.jsonl"))
    if not logs:
        return 0, []
    lines = []
    for raw in logs[0].read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            pass
    turns = [l for l in lines if l.get("type") == "turn"]
    return len(turns), lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20, help="utterances (default 20)")
    ap.add_argument("--cores", type=int, default=2, help="CPU cores for the assistant (default 2)")
    ap.add_argument("--model", help="emotion model bundle (default: the shipped one)")
    ap.add_argument("--no-speak", action="store_true", help="print replies instead of speaking")
    ap.add_argument("--datasets", default=str(REPO.parent / "shared" / "datasets"))
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = ap.parse_args()

    files = pick_files(Path(args.datasets), args.n)
    runtime = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    os.chmod(runtime, 0o700)
    log_dir = runtime / "logs"
    rig = PulseRig(runtime)
    rig.start()
    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    cmd = [sys.executable, "-m", "assistant.cli", "--plain", "--log-dir", str(log_dir),
           "--max-turns", str(args.n)]
    if args.model:
        cmd += ["--model", args.model]
    if args.no_speak:
        cmd.append("--no-speak")
    t_start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=rig.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.sched_setaffinity(0, cores))
    startup = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "[listening]" in line:
                startup = time.monotonic() - t_start
                break
        else:
            print("assistant ended before listening:", proc.stderr.read(), file=sys.stderr)
            return 1
        for k, f in enumerate(files, 1):
            time.sleep(0.4)
            rig.play_into_mic(f)
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and count_turns(log_dir)[0] < k:
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
            n_turns = count_turns(log_dir)[0]
            print(f"  {k:>2}/{len(files)} {f.name}: {n_turns} turn(s) logged", file=sys.stderr)
            if proc.poll() is not None:
                break
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=30)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        rig.stop()
    _, lines = count_turns(log_dir)
    shutil.rmtree(runtime, ignore_errors=True)
    turns = [l for l in lines if l.get("type") == "turn"]
    if not turns:
        print("no turns logged; assistant stderr:\n" + err, file=sys.stderr)
        return 1

    def med(key):
        return statistics.median(t["latency_ms"][key] for t in turns)

    with_emotion = [t for t in turns if t.get("emotion")]
    result = {
        "turns": len(turns), "utterances": len(files), "cores": len(cores),
        "startup_to_listening_s": round(startup or -1, 2),
        "median_total_ms": round(med("total"), 1),
        "median_stage_ms": {k: round(med(k), 1) for k in ("stt", "ser", "reply")},
        "p90_total_ms": round(sorted(t["latency_ms"]["total"] for t in turns)[int(0.9 * (len(turns) - 1))], 1),
        "median_synth_ms": round(statistics.median(t.get("speech", {}).get("synth_ms", 0) for t in turns), 1),
        "turns_with_emotion": len(with_emotion),
        "model_version": with_emotion[0]["emotion"]["model_version"] if with_emotion else None,
        "empty_transcripts": sum(1 for t in turns if not t["transcript"].strip()),
    }
    print(f"turn latency over {result['turns']} turns ({len(files)} RAVDESS utterances through the "
          f"virtual microphone, {len(cores)} cores, sphinx, "
          f"{'spoken' if not args.no_speak else 'printed'} replies)")
    print(f"  start-up to listening: {result['startup_to_listening_s']} s")
    print(f"  median total (end of utterance -> reply starts): {result['median_total_ms']} ms"
          f"   p90 {result['p90_total_ms']} ms")
    print("  median per stage: " + ", ".join(f"{k} {v} ms" for k, v in result["median_stage_ms"].items())
          + f", speech synthesis {result['median_synth_ms']} ms")
    print(f"  emotion model: {result['model_version'] or 'NONE (no bundle: ser not measured)'}; "
          f"turns with emotion {result['turns_with_emotion']}/{result['turns']}; "
          f"empty transcripts {result['empty_transcripts']}")
    if err.strip():
        print("assistant stderr:\n  " + "\n  ".join(err.strip().splitlines()[-5:]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
