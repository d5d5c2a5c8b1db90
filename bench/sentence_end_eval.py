"""Do the words at a pause sound finished? The endpointer's word rule (``vad.continues``)
offline, on whole RAVDESS sentences and the same sentences cut at each word boundary.

Each clip (RAVDESS actors in ``../shared``, every ``--every``-th clip of all emotions) is
decoded as the endpointer sees it at a pause: the audio up to the middle of the gap after a
word (the quietest 10 ms near Whisper's word gap, ``tests/joined_clips._boundary``; or 50 ms
past the last word) plus 0.1 s of silence, through ``WhisperTranscriber`` (the
assistant's short decode). Word boundaries are Whisper's word timestamps
(``tests/joined_clips.word_times``, cached). A whole sentence judged "goes on" waits
``continue_s`` (0.9 s) instead of the hang-over; a cut judged finished ends the turn at any
pause longer than the hang-over (0.3 s): a cut-off.

Reports the AUC of Whisper's sentence-end probability (whole vs cut) and, for the mark alone
and for each threshold, whole sentences held and cuts judged finished.

    .venv/bin/python bench/sentence_end_eval.py [--every 8] [--datasets ../shared/datasets]

``--last-word`` also records how sure Whisper is of the last word (the lowest probability of
its tokens, from the same decode's logits) and scores it as a further "goes on" cue, on the
RAVDESS clips and on whole TESS sentences ("Say the word ...", every ``--tess-every``-th).

The rows "+ last word < S s" add the rule for words Whisper fills in (``vad.LAST_WORD_S``):
the last word goes on when less than S s of the audio before the pause lies under it (its
start from Whisper's word alignment, ``Transcript.last_word_s``).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant import vad  # noqa: E402


@dataclass(frozen=True)
class Pause:
    """One clip decoded as the endpointer sees it at a pause after word ``word``."""

    path: Path
    word: int
    whole: bool
    """The pause is after the sentence's last word."""
    end: int
    """Samples of the clip before the pause."""
    text: str
    end_prob: float | None
    last_word_prob: float | None = None
    last_word_s: float | None = None
    """Audio (s) under the last word (:attr:`Transcript.last_word_s`, the pause at ``end``)."""


def _transcriber():
    """The assistant's Whisper decode, and a dict its decodes leave the last word's probability
    in (``"last_word"``: the lowest probability of the last word's tokens, marks excluded)."""
    from assistant.stt import WhisperTranscriber

    tr = WhisperTranscriber(background=False)
    seen: dict[str, float | None] = {}
    end_prob = tr._end_prob

    def recording(tokens, logits):
        tk = tr._tokenizer()
        k = len(tokens)
        while k > 0 and tokens[k - 1] in tr._skip_ids:
            k -= 1
        j = k - 1
        while j > 0 and not tk.decode([tokens[j]]).startswith(" "):
            j -= 1
        probs = []
        for i in range(max(j, 0), min(k, len(logits))):
            z = np.asarray(logits[i], dtype=np.float64).reshape(-1)
            e = np.exp(z - z.max())
            probs.append(float(e[tokens[i]] / e.sum()))
        seen["last_word"] = min(probs) if probs else None
        return end_prob(tokens, logits)

    tr._end_prob = recording
    return tr, seen


def collect(files: list[Path], tr, seen: dict) -> tuple[list[Pause], list[tuple[float, float]]]:
    """Every clip decoded at each word boundary (``tr``, ``seen``: :func:`_transcriber`), and
    per clip (end probability of the whole sentence, of its cut after the 3rd word)."""
    from assistant.types import Utterance
    from tests.joined_clips import _boundary, _load, word_times

    pause = np.zeros(1600, np.float32)
    rows: list[Pause] = []
    pairs = []
    for i, path in enumerate(files, 1):
        words = word_times(path)
        y = _load(path)
        probs = []
        for j in range(len(words)):
            last = j == len(words) - 1
            end = int((words[j][2] + 0.05) * 16000) if last else _boundary(y, words[j][2], words[j + 1][1])
            end = min(end, len(y))
            seen.clear()
            t = tr.transcribe(Utterance(samples=np.concatenate([y[:end], pause]), sample_rate=16000),
                              voiced_until=end)
            rows.append(Pause(path, j, last, end, t.text, t.end_prob, seen.get("last_word"), t.last_word_s))
            probs.append(t.end_prob)
        if len(probs) > 3 and probs[-1] is not None and probs[2] is not None:
            pairs.append((probs[-1], probs[2]))
        print(f"\r  {i}/{len(files)} clips", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows, pairs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=8, help="use every N-th RAVDESS clip (default 8)")
    ap.add_argument("--datasets", default=os.environ.get("SER_DATASETS", str(REPO.parent / "shared" / "datasets")))
    ap.add_argument("--last-word", action="store_true",
                    help="also score Whisper's probability of the last word as a cue (RAVDESS, whole TESS)")
    ap.add_argument("--tess-every", type=int, default=20, help="with --last-word: every N-th TESS clip (default 20)")
    args = ap.parse_args()
    from sklearn.metrics import roc_auc_score

    files = sorted(Path(args.datasets, "ravdess").glob("Actor_*/*.flac"))[:: args.every]
    if not files:
        print(f"no RAVDESS clips under {args.datasets}", file=sys.stderr)
        return 1
    tr, seen = _transcriber()  # one model for both corpora
    rows, pairs = collect(files, tr, seen)
    whole = [r for r in rows if r.whole]
    cut = [r for r in rows if not r.whole]
    scored = [r for r in rows if r.end_prob is not None]
    auc = roc_auc_score([r.whole for r in scored], [r.end_prob for r in scored])
    print(f"{len(files)} clips: {len(whole)} whole sentences, {len(cut)} cut at a word boundary; "
          f"sentence-end probability AUC {auc:.3f}")
    print(f"whole above its cut after the 3rd word (\"Kids are talking |\"): "
          f"{sum(w > c for w, c in pairs)}/{len(pairs)} clips")
    print("rule | whole sentences held (wait 0.9 s) | cuts judged finished (cut off at pauses > 0.3 s)")

    def line(name: str, goes_on) -> None:
        held = sum(1 for r in whole if goes_on(r))
        done = sum(1 for r in cut if not goes_on(r))
        print(f"  {name:<28} | {held}/{len(whole)} ({held / len(whole):.1%}) | "
              f"{done}/{len(cut)} ({done / len(cut):.1%})")

    line("words and mark only", lambda r: vad.continues(r.text))
    for th in (0.3, 0.4, 0.5, 0.6, 0.7):
        mark = " (+ last word, below)" if abs(th - vad.END_PROB) < 1e-9 else ""
        line(f"+ end probability < {th}{mark}",
             lambda r, th=th: vad.continues(r.text) or (r.end_prob is not None and r.end_prob < th))
    for s in (0.1, vad.LAST_WORD_S, 0.2):
        mark = " (default)" if abs(s - vad.LAST_WORD_S) < 1e-9 else ""
        line(f"  + last word < {s:g} s{mark}", lambda r, s=s: vad.continues(r.text, r.end_prob) or (
            r.last_word_s is not None and r.last_word_s < s))
    # the capture knows the end of the voice only to its 32 ms frame: up to that much later
    line("  + last word, voice end +32 ms", lambda r: vad.continues(
        r.text, r.end_prob, None if r.last_word_s is None else r.last_word_s + 0.032))
    under = np.array([r.last_word_s for r in whole if r.last_word_s is not None])
    if under.size:
        print(f"  audio under the last word of whole sentences: 1st/5th/50th percentile "
              f"{np.percentile(under, 1):.3f} / {np.percentile(under, 5):.3f} / {np.median(under):.3f} s")
    if args.last_word:
        tess = whole_tess(sorted(Path(args.datasets, "tess").glob("*/*.flac"))[:: args.tess_every], tr, seen)
        print(f"last word's probability as a further cue (default rule, or the last word under p); "
              f"also {len(tess)} whole TESS sentences")

        before = sum(1 for r in tess if vad.continues(r.text, r.end_prob))
        now = sum(1 for r in tess if vad.continues(r.text, r.end_prob, r.last_word_s))
        print(f"  TESS whole held: end probability < {vad.END_PROB} {before}/{len(tess)}, "
              f"+ last word < {vad.LAST_WORD_S:g} s {now}/{len(tess)}")

        def rule(r: Pause, p: float | None) -> bool:
            return vad.continues(r.text, r.end_prob, r.last_word_s) or (
                p is not None and r.last_word_prob is not None and r.last_word_prob < p)

        for p in (None, 0.3, 0.5, 0.7):
            held_tess = sum(1 for r in tess if rule(r, p))
            line(f"+ last word p < {p}" if p else "default rule", lambda r, p=p: rule(r, p))
            print(f"  {'':<28} | TESS whole held {held_tess}/{len(tess)} ({held_tess / max(len(tess), 1):.1%})")
    return 0


def whole_tess(files: list[Path], tr, seen: dict) -> list[Pause]:
    """Whole TESS sentences (their silence trimmed) decoded as at a pause."""
    from assistant.types import Utterance
    from tests.joined_clips import _load, _trim

    pause = np.zeros(1600, np.float32)
    rows = []
    for path in files:
        y = _trim(_load(path))
        seen.clear()
        t = tr.transcribe(Utterance(samples=np.concatenate([y, pause]), sample_rate=16000), voiced_until=len(y))
        rows.append(Pause(path, -1, True, len(y), t.text, t.end_prob, seen.get("last_word"), t.last_word_s))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
