"""What the user waits: perceived turn latency through the real audio path, and cut-offs.

Starts a private PulseAudio daemon (``tests.audio_devices.PulseRig``), runs ``assistant``
(default engines: Whisper tiny.en, the shipped emotion model, spoken replies on the virtual
speaker) as a subprocess pinned to ``--cores`` CPU cores, plays clips into the virtual
microphone one at a time (each after the previous reply has been spoken and logged) and
records the virtual microphone and the virtual speaker at the same time. Per turn and as
median / p90 it prints:

- **perceived latency**: last voiced sample of the user's clip (its last 20 ms frame within
  35 dB of the clip's loudest) -> first voiced sample of the reply (above -40 dBFS), both
  measured on the recordings (what the user waits);
- the stage times from the session log (``endpoint``: end of speech -> end of turn decided,
  ``stt``, ``ser``, ``reply``, ``total``: end of turn -> reply starts, ``synth``);
- with ``--clips unfinished``/``joined`` the **cut-off rate**: clips that should be one turn
  but became two (``tests/joined_clips.py`` builds them from RAVDESS with Whisper word
  timestamps).

``--hangover S`` (repeatable) reruns the set at each end-of-turn silence, the trade-off table.

    .venv/bin/python bench/turn_latency.py [-n 8] [--clips plain|unfinished|joined]
        [--hangover 0.3 --hangover 0.5] [--stt whisper|sphinx] [--cores 2] [--no-speak]
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
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.audio_devices import MIC_SOURCE, SPEAKER_SOURCE, PulseRig  # noqa: E402

RATE = 16000
FRAME = 320  # 20 ms
VOICED_RMS = 0.01  # the reply (espeak-ng, loud and steady)
SPEECH_DB = -35.0  # the user's speech, relative to the clip's loudest frame


class Recorder:
    """Records one PulseAudio source; sample i was heard at ``t0 + i / RATE`` (monotonic)."""

    def __init__(self, env: dict, source: str) -> None:
        self._proc = subprocess.Popen(
            ["pacat", "--record", "-d", source, "--format=float32le", f"--rate={RATE}",
             "--channels=1", "--latency-msec=10"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self._chunks: list[bytes] = []
        self.t0: float | None = None
        self._n = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 1024)
            if not chunk:
                return
            now = time.monotonic()
            self._n += len(chunk)
            if self.t0 is None or len(self._chunks) < 50:
                # the earliest clock estimate of sample 0 over the first chunks (read jitter only delays)
                t0 = now - self._n / 4 / RATE
                self.t0 = t0 if self.t0 is None else min(self.t0, t0)
            self._chunks.append(chunk)

    def now_index(self) -> int:
        return self._n // 4

    def stop(self) -> np.ndarray:
        self._proc.terminate()
        self._proc.wait(timeout=5)
        self._thread.join(timeout=5)
        raw = b"".join(self._chunks)
        raw = raw[: len(raw) - len(raw) % 4]
        return np.frombuffer(raw, dtype=np.float32).copy()


def voiced_frames(y: np.ndarray) -> np.ndarray:
    n = len(y) // FRAME
    if not n:
        return np.zeros(0, bool)
    f = y[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    return np.sqrt((f * f).mean(axis=1)) > VOICED_RMS


def speech_frames(y: np.ndarray) -> np.ndarray:
    """The user's voiced frames in one clip's stretch of the microphone recording: within
    ``SPEECH_DB`` of that stretch's loudest 20 ms frame (and above -54 dBFS). A fixed -40 dBFS
    (``VOICED_RMS``) put the "last voiced sample" inside the last word of quiet clips: a fifth
    of RAVDESS clips peak at -40 to -34 dBFS, and their soft final syllables sat under it,
    counting up to a second of the user's own speech as waiting."""
    n = len(y) // FRAME
    if not n:
        return np.zeros(0, bool)
    f = y[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    rms = np.sqrt((f * f).mean(axis=1))
    return rms >= max(0.002, float(rms.max()) * 10 ** (SPEECH_DB / 20))


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


def _resume_sample(y: np.ndarray, min_s: float = 0.25) -> int | None:
    """Where speech resumes after the pause put into a cut clip (its longest inner run of
    digital silence, at least ``min_s``); None when it has none."""
    zero = np.concatenate([[False], np.asarray(y) == 0.0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    starts, ends = edges[::2], edges[1::2]
    inside = (starts > 0) & (ends < len(y))  # not a clip's own leading or trailing silence
    starts, ends = starts[inside], ends[inside]
    if not len(starts):
        return None
    i = int(np.argmax(ends - starts))
    return int(ends[i]) if ends[i] - starts[i] >= min_s * RATE else None


def _drain(stream) -> None:
    """Read the assistant's stdout so it never blocks on a full pipe (until it is closed)."""
    try:
        for _ in stream:
            pass
    except (ValueError, OSError):
        pass  # closed when the session ends


def read_log(log_dir: Path) -> list[dict]:
    logs = sorted(log_dir.glob("session-*.jsonl"))
    lines = []
    for raw in (logs[0].read_text().splitlines() if logs else []):
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            pass
    return lines


def events(lines: list[dict]) -> list[dict]:
    """Turns and no-speech events: each is one end of turn the assistant decided."""
    return [l for l in lines if l.get("type") in ("turn", "no_speech")]


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def run_set(args, clips: list[tuple], hangover: float | None,
            repo: Path = REPO) -> dict:
    """Play ``clips`` (name, samples, turns expected[, sample where speech resumes after a put-in
    pause]) through one assistant session."""
    runtime = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    os.chmod(runtime, 0o700)
    log_dir = runtime / "logs"
    rig = PulseRig(runtime)
    rig.start()
    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    cmd = [sys.executable, "-m", "assistant.cli", "--plain", "--log-dir", str(log_dir)]
    if args.stt:
        cmd += ["--stt", args.stt]
    if args.model:
        cmd += ["--model", args.model]
    if args.no_speak:
        cmd.append("--no-speak")
    if hangover is not None:
        cmd += ["--end-silence", str(hangover)]
    cmd += args.extra
    if repo != REPO and "--end-silence" in cmd:  # an older checkout has no such flag
        i = cmd.index("--end-silence")
        del cmd[i:i + 2]
    mic = Recorder(rig.env, MIC_SOURCE)
    spk = Recorder(rig.env, SPEAKER_SOURCE)
    t_start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=repo, env=rig.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.sched_setaffinity(0, cores))
    startup = None
    plays: list[tuple[int, int]] = []  # (mic index when the clip started, events before it)
    err = ""
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "[listening]" in line:
                startup = time.monotonic() - t_start
                break
        else:
            return {"error": "assistant ended before listening: " + proc.stderr.read()[-2000:]}
        threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
        for k, (name, y, expect, *_) in enumerate(clips, 1):
            time.sleep(0.6)
            before = len(events(read_log(log_dir)))
            plays.append((mic.now_index(), before))
            rig.play_into_mic(y)
            # the reply (and any second turn) has been spoken when the log has the events and
            # the speaker has been quiet for a while
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and len(events(read_log(log_dir))) <= before:
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
            # a second turn (a cut-off clip, or the second of two sentences) comes after the
            # first reply: wait until no new event has come for a while
            quiet_since, seen = time.monotonic(), len(events(read_log(log_dir)))
            while time.monotonic() - quiet_since < (3.0 if expect > 1 else 2.0) and proc.poll() is None:
                time.sleep(0.1)
                now = len(events(read_log(log_dir)))
                if now != seen:
                    seen, quiet_since = now, time.monotonic()
            n = len(events(read_log(log_dir))) - before
            print(f"  {k:>2}/{len(clips)} {name}: {n} turn(s) (expected {expect})", file=sys.stderr)
            if proc.poll() is not None:
                break
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    finally:
        if proc.poll() is None:
            proc.kill()
        heard_mic = mic.stop()
        heard_spk = spk.stop()
        rig.stop()
    lines = read_log(log_dir)
    shutil.rmtree(runtime, ignore_errors=True)
    evs = events(lines)
    turns = [l for l in lines if l.get("type") == "turn"]
    vs = voiced_frames(heard_spk)
    offset = (spk.t0 - mic.t0) * RATE / FRAME  # speaker frame 0 is mic frame `offset`
    rows = []
    for k, (start, before) in enumerate(plays):
        end = plays[k + 1][0] if k + 1 < len(plays) else len(heard_mic)
        f0, f1 = start // FRAME, end // FRAME
        on = np.flatnonzero(speech_frames(heard_mic[f0 * FRAME:f1 * FRAME]))
        n_events = (plays[k + 1][1] if k + 1 < len(plays) else len(evs)) - before
        mine = evs[before:before + n_events]
        words = " ".join(e.get("transcript", "") for e in mine if e.get("type") == "turn").lower()
        # the mic is closed while the assistant answers, so the rest of a cut-off sentence is
        # often never heard: a cut shows as a first turn without the sentence's last word
        first = next((e.get("transcript", "") for e in mine if e.get("type") == "turn"), "").lower()
        first_turn = next((e for e in mine if e.get("type") == "turn"), {})
        row = {"clip": clips[k][0], "expected": clips[k][2], "turns": n_events, "words": words,
               "cut": n_events > 1 or "door" not in first,
               "endpoint_ms": first_turn.get("latency_ms", {}).get("endpoint"),
               "words_at_pause": (first_turn.get("endpoint") or {}).get("words_at_pause"),
               "pauses": (first_turn.get("endpoint") or {}).get("pauses"),
               "end_prob": (first_turn.get("endpoint") or {}).get("end_prob"),
               "words_after_s": (first_turn.get("endpoint") or {}).get("words_after_s"),
               "total_ms": first_turn.get("latency_ms", {}).get("total"),
               "synth_ms": (first_turn.get("speech") or {}).get("synth_ms")}
        resume = clips[k][3] if len(clips[k]) > 3 else None
        if resume is not None:
            # the reply began before the user went on after the pause: the turn ended in the
            # pause even when its words hold "door" (a cut after "the" can keep the start of
            # "door", which Whisper then hears whole), and the rest was spoken over the reply
            s_at = max(0, int(np.floor(f0 - offset)))
            out = np.flatnonzero(vs[s_at:int(np.ceil(f1 - offset)) + 200])
            if len(out) and (s_at + out[0]) + offset < f0 + resume / FRAME:
                row["cut"], row["reply_in_pause"] = True, True
        if len(on):
            last_in = f0 + on[-1] + 1  # end of the last voiced input frame (mic frames)
            s_from = max(0, int(np.floor(last_in - offset)))
            s_to = int(np.ceil(f1 - offset)) + 200
            out = np.flatnonzero(vs[s_from:s_to])
            if len(out) and not args.no_speak and clips[k][2] == 1:
                row["perceived_ms"] = round(((s_from + out[0]) + offset - last_in) * FRAME / RATE * 1000, 1)
        rows.append(row)
    return {"startup_s": round(startup or -1, 2), "rows": rows, "turns": turns, "events": evs,
            "stderr": err}


def summarise(name: str, res: dict, args) -> dict:
    rows, turns = res["rows"], res["turns"]
    perceived = [r["perceived_ms"] for r in rows if "perceived_ms" in r and r["turns"] == r["expected"]
                 and not (r["expected"] == 1 and r["cut"] and name.startswith("unfinished"))]
    stages = {}
    for key in ("endpoint", "stt", "ser", "reply", "total"):
        xs = [t["latency_ms"][key] for t in turns if key in t["latency_ms"]]
        if xs:
            stages[key] = (round(statistics.median(xs), 1), round(pct(xs, 0.9), 1))
    synth = [t.get("speech", {}).get("synth_ms") for t in turns if t.get("speech", {}).get("synth_ms") is not None]
    if synth:
        stages["synth"] = (round(statistics.median(synth), 1), round(pct(synth, 0.9), 1))
    one = [r for r in rows if r["expected"] == 1]
    cut = sum(1 for r in one if r["cut"])
    missed = sum(1 for r in rows if r["turns"] == 0)
    two = [r for r in rows if r["expected"] == 2]
    # the second sentence starts "Dogs are sitting": in the one turn (joined), or never heard
    # (the first turn ended in the pause and the microphone was closed while the reply played)
    merged = sum(1 for r in two if r["turns"] == 1 and "dogs" in r["words"])
    unheard = sum(1 for r in two if r["turns"] == 1 and "dogs" not in r["words"])
    out = {
        "set": name, "clips": len(rows), "startup_s": res["startup_s"],
        "perceived_ms": {"median": round(statistics.median(perceived), 1) if perceived else None,
                         "p90": round(pct(perceived, 0.9), 1) if perceived else None,
                         "n": len(perceived), "each": [r.get("perceived_ms") for r in rows]},
        "stages_ms_median_p90": stages,
        "cut_off": f"{cut}/{len(one)}" if one else None,
        "two_sentences_as_one_turn": f"{merged}/{len(two)}" if two else None,
        "second_sentence_unheard": f"{unheard}/{len(two)}" if two else None,
        "no_turn": missed,
    }
    print(f"\n[{name}] {len(rows)} clips, start-up to listening {res['startup_s']} s")
    pm = out["perceived_ms"]
    print(f"  perceived latency (last voiced input -> first voiced reply): median {pm['median']} ms, "
          f"p90 {pm['p90']} ms over {pm['n']} turns")
    print("    each: " + " ".join(str(x) for x in pm["each"]))
    if args.per_turn:
        for r in rows:
            ep, tot, syn = r.get("endpoint_ms"), r.get("total_ms"), r.get("synth_ms")
            print(f"    {r['clip'][:40]:<40} perceived {r.get('perceived_ms')!s:>7} endpoint "
                  f"{round(ep) if ep is not None else '-':>5} stages {round(tot) if tot is not None else '-':>4} "
                  f"synth {round(syn) if syn is not None else '-':>3}  pauses {r.get('pauses')!s:>2}  words known at "
                  f"{r.get('words_after_s')!s:>5} s  words at the pause {r.get('words_at_pause')!r} "
                  f"(sentence end p {r.get('end_prob')})")
    print("  stage ms median/p90: " + ", ".join(f"{k} {m}/{p}" for k, (m, p) in stages.items()))
    if one:
        print(f"  cut off (a second turn, the first turn lacks the last word 'door', or the reply began "
              f"in the pause): {out['cut_off']}")
        print("    " + " | ".join(f"{r['clip'].split(' ', 1)[-1]}: {r['words'][:40]!r}" for r in one if r["cut"]))
    if two:
        print(f"  two sentences heard as one turn: {out['two_sentences_as_one_turn']}; as two turns: "
              f"{sum(1 for r in two if r['turns'] == 2)}/{len(two)}; the second never heard (the reply "
              f"played over it, microphone closed): {out['second_sentence_unheard']}")
    print(f"  clips with no turn: {missed}")
    tail = [l for l in res["stderr"].strip().splitlines() if l.strip()][-3:]
    if tail:
        print("  assistant stderr: " + " | ".join(tail))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=8, help="clips per set (default 8)")
    ap.add_argument("--clips", choices=("plain", "unfinished", "joined", "all"), default="plain")
    ap.add_argument("--hangover", type=float, action="append",
                    help="end-of-turn silence in s (repeat for the trade-off table; default: the assistant's)")
    ap.add_argument("--cores", type=int, default=2, help="CPU cores for the assistant (default 2)")
    ap.add_argument("--stt", choices=("whisper", "sphinx"), help="speech-to-text (default: the assistant's)")
    ap.add_argument("--model", help="emotion model bundle (default: the shipped one)")
    ap.add_argument("--no-speak", action="store_true", help="print replies instead of speaking")
    ap.add_argument("--datasets", default=os.environ.get("SER_DATASETS", str(REPO.parent / "shared" / "datasets")))
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    ap.add_argument("--per-turn", action="store_true",
                    help="also print each turn: perceived and endpointing delay, the words the "
                         "endpointer saw at the pause")
    ap.add_argument("--baseline", metavar="DIR",
                    help="also run each set with the assistant of this checkout (e.g. a git worktree of "
                         "an older commit), in the same run, first: the machine's load changes by the minute")
    ap.add_argument("extra", nargs="*", help="more assistant flags (after --)")
    args = ap.parse_args()

    import soundfile as sf

    sets: dict[str, list] = {}
    if args.clips in ("plain", "all"):
        sets["plain"] = [(f.name, sf.read(str(f), dtype="float32")[0], 1)
                         for f in pick_files(Path(args.datasets), args.n)]
    if args.clips in ("unfinished", "joined", "all"):
        from tests.joined_clips import joined_sentences, unfinished_clips

        if args.clips in ("unfinished", "all"):
            sets["unfinished"] = [(c.name, c.samples, 1, _resume_sample(c.samples))
                                  for c in unfinished_clips(Path(args.datasets), args.n)]
        if args.clips in ("joined", "all"):
            sets["joined"] = [(c.name, c.samples, 2) for c in joined_sentences(Path(args.datasets), args.n)]
    results = []
    runs = [(None, name, REPO) for name in sets] if not args.baseline else []
    for name in sets:
        if args.baseline:
            runs.append(("baseline", name, Path(args.baseline).resolve()))
        for hang in args.hangover or ([None] if args.baseline else []):
            runs.append((hang, name, REPO))
    if not args.baseline and args.hangover:
        runs = [(hang, name, REPO) for name in sets for hang in args.hangover]
    for hang, name, repo in runs:
        if hang == "baseline":
            label, hang = f"{name} BASELINE {args.baseline}", None
        else:
            label = name + (f" hang-over {hang:.2f} s" if hang is not None else "")
        res = run_set(args, sets[name], hang, repo)
        if "error" in res:
            print(res["error"], file=sys.stderr)
            return 1
        results.append({**summarise(label, res, args), "hangover_s": hang if repo == REPO else "baseline"})
    if len(results) > 1:
        print("\ntrade-off: hang-over | set | perceived median/p90 ms | cut off | 2 sentences as 1")
        for r in results:
            pm = r["perceived_ms"]
            print(f"  {r['hangover_s']} | {r['set']} | {pm['median']}/{pm['p90']} | {r['cut_off']} | "
                  f"{r['two_sentences_as_one_turn']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
