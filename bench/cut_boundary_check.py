"""Does Whisper hear the next word in a cut clip? A check of the endpointing test clips.

``tests/joined_clips`` cuts "Kids are talking by the door" at the quietest 10 ms within 80 ms
of Whisper's word gap. After "the" the cut can keep the onset of "door" (RAVDESS actors say
the sentence without a break). This decodes the audio before the cut after the 5th word (plus
0.5 s of silence, as the endpointer sees it at a pause) with the assistant's Whisper decode,
for that cut and for a stricter one (the quietest 10 ms from 80 ms before the end of "the" to
Whisper's start of "door", never later), and counts the decodes that contain "door".

    .venv/bin/python bench/cut_boundary_check.py [-n 40] [--datasets ../shared/datasets]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=40, help="RAVDESS clips of the sentence (default 40)")
    ap.add_argument("--datasets", default=os.environ.get("SER_DATASETS", str(REPO.parent / "shared" / "datasets")))
    args = ap.parse_args()
    from assistant.stt import WhisperTranscriber
    from assistant.types import Utterance
    from tests.joined_clips import RATE, _boundary, _clips, _load, word_times

    paths = _clips(Path(args.datasets), "01", args.n)
    if not paths:
        print(f"no RAVDESS clips under {args.datasets}", file=sys.stderr)
        return 1
    tr = WhisperTranscriber(background=False)
    pause = np.zeros(RATE // 2, np.float32)
    heard = {"tests/joined_clips cut": 0, "strict cut": 0}
    n = 0
    for path in paths:
        words = word_times(path)
        if len(words) < 6:
            continue
        y = _load(path)
        n += 1
        end_s, start_s = words[4][2], words[5][1]
        texts = []
        for key, cut in (("tests/joined_clips cut", _boundary(y, end_s, start_s)),
                         ("strict cut", _boundary(y, end_s, start_s, strict=True))):
            text = tr.transcribe(Utterance(samples=np.concatenate([y[:cut], pause]), sample_rate=RATE)).text
            heard[key] += "door" in text.lower()
            texts.append(f"{cut / RATE:.3f} s {text!r}")
        print(f"  {path.name}  'the' ends {end_s:.3f} s, 'door' starts {start_s:.3f} s | " + " | ".join(texts))
    for key, k in heard.items():
        print(f"{key}: 'door' heard before the cut after 'the' in {k}/{n} clips")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
