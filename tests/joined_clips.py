"""Test clips for endpointing, built from RAVDESS with Whisper's word timestamps.

- :func:`unfinished_clips`: one sentence ("Kids are talking by the door") cut at a word
  boundary and a pause of 300-900 ms of silence put in: "Kids are | talking by the door",
  "Kids are talking | by the door", "Kids are talking by the | door". One utterance: the
  endpointer should keep it one turn (up to 700 ms pauses, the target).
- :func:`joined_sentences`: two whole sentences (two clips) with such a pause between them:
  two turns or one, either can be right; the bench reports how often each happens.

Word boundaries come from faster-whisper (``word_timestamps=True``) on the bundled tiny.en;
they are cached in ``.cache/word_times.json`` (no audio is written: the clips are built in
memory from the shared datasets each time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "word_times.json"
RATE = 16000
PAUSES_MS = (300, 500, 700, 900)
CUT_AFTER = (1, 2, 4)
"""Cut after the 2nd word ("are"), the 3rd ("talking", the issue's example) and the 5th ("the")."""


@dataclass(frozen=True)
class Clip:
    name: str
    samples: np.ndarray
    pause_ms: int
    cut_after: str = ""


def _load(path: Path) -> np.ndarray:
    import soundfile as sf

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    assert sr == RATE, (path, sr)
    return y


def word_times(path: Path) -> list[tuple[str, float, float]]:
    """(word, start s, end s) of each word Whisper hears in ``path`` (cached)."""
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    key = f"{path.parent.name}/{path.name}"
    if key not in cache:
        from ser_model.whisper_model import shared_whisper

        model = shared_whisper(None)
        segments, _ = model.transcribe(_load(path), language="en", beam_size=1, word_timestamps=True,
                                       condition_on_previous_text=False, vad_filter=False)
        cache[key] = [(w.word.strip(), round(w.start, 3), round(w.end, 3))
                      for s in segments for w in (s.words or [])]
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(json.dumps(cache, indent=0))
    return [tuple(w) for w in cache[key]]


def _clips(datasets: Path, statement: str, n: int) -> list[Path]:
    """n RAVDESS clips of one statement ("01" kids / "02" dogs), spread over actors."""
    actors = sorted((datasets / "ravdess").glob("Actor_*"))
    out = []
    i = 0
    while len(out) < n and i < 20 * n:
        a = actors[i % len(actors)]
        cands = sorted(p for p in a.glob("*.flac") if p.name.split("-")[4] == statement
                       and p.name.split("-")[3] == "01")  # normal intensity
        if cands:
            out.append(cands[(i // len(actors)) % len(cands)])
        i += 1
    return out


def _trim(y: np.ndarray) -> np.ndarray:
    """Without the leading and trailing silence of a RAVDESS clip (about 1 s each side): from
    100 ms before the first to 100 ms after the last frame within 30 dB of the loudest."""
    frames = len(y) // 320
    rms = np.sqrt((y[: frames * 320].reshape(frames, 320) ** 2).mean(axis=1))
    on = np.flatnonzero(rms > rms.max() * 10 ** (-30 / 20))
    if not len(on):
        return y
    return y[max(0, on[0] * 320 - 1600): min(len(y), (on[-1] + 1) * 320 + 1600)]


def _boundary(y: np.ndarray, end_s: float, start_s: float, slack_s: float = 0.08, *,
              strict: bool = False) -> int:
    """The sample to cut at between two words: the quietest 10 ms within ``slack_s`` of the
    gap Whisper's timestamps give (on RAVDESS "Kids are talking by the door" that moved the
    cut up to 75 ms from the gap's middle). After "the" Whisper still often hears "door"
    in what is left before the cut. ``strict``: never past ``start_s`` (the next word's start)."""
    lo, hi = int((end_s - slack_s) * RATE), int((start_s + (0.0 if strict else slack_s)) * RATE)
    lo, hi = max(0, lo), min(len(y), max(hi, lo + 160))
    hop = 160
    frames = (hi - lo) // hop
    if frames < 1:
        return int((end_s + start_s) / 2 * RATE)
    seg = y[lo: lo + frames * hop].reshape(frames, hop)
    return lo + int(np.argmin((seg ** 2).mean(axis=1))) * hop + hop // 2


def unfinished_clips(datasets: Path, n: int) -> list[Clip]:
    """n clips of one sentence split at a word boundary by a 300-900 ms pause."""
    out = []
    for i, path in enumerate(_clips(datasets, "01", n)):
        words = word_times(path)
        cut_after = CUT_AFTER[i % len(CUT_AFTER)]
        pause = PAUSES_MS[(i // len(CUT_AFTER)) % len(PAUSES_MS)] if n > 4 else PAUSES_MS[i % len(PAUSES_MS)]
        if len(words) <= cut_after + 1:
            continue
        y = _load(path)
        cut = _boundary(y, words[cut_after][2], words[cut_after + 1][1])
        lead = " ".join(w for w, _, _ in words[: cut_after + 1])
        joined = np.concatenate([y[:cut], np.zeros(int(pause / 1000 * RATE), np.float32), y[cut:]])
        out.append(Clip(name=f"{path.stem} '{lead} |' +{pause} ms", samples=_trim(joined),
                        pause_ms=pause, cut_after=lead))
    return out


def joined_sentences(datasets: Path, n: int) -> list[Clip]:
    """n pairs of whole sentences (kids, then dogs) with a 300-900 ms pause between them."""
    a, b = _clips(datasets, "01", n), _clips(datasets, "02", n)
    out = []
    for i, (p, q) in enumerate(zip(a, b)):
        pause = PAUSES_MS[i % len(PAUSES_MS)]
        y = np.concatenate([_trim(_load(p)), np.zeros(int(pause / 1000 * RATE), np.float32), _trim(_load(q))])
        out.append(Clip(name=f"{p.stem}+{q.stem} +{pause} ms", samples=y, pause_ms=pause))
    return out
