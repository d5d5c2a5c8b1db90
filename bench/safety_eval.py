#!/usr/bin/env python3
"""Recall and false alarms of the safety net on assistant/data/safety_eval.jsonl.

The set holds first-person at-risk sentences (warning signs as crisis-line training and
screening material list them) and hard negatives (figurative "killing me", grief, news,
fiction, first aid). Its ``heldout`` part was written before the detector and is never
tuned on; report it separately from the ``tune`` part.

    python bench/safety_eval.py              # both parts, and the misses / false alarms
    python bench/safety_eval.py --baseline   # the same for the old single regex, for comparison
    python bench/safety_eval.py --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.safety import is_at_risk  # noqa: E402

DATA = ROOT / "assistant" / "data" / "safety_eval.jsonl"

# The detector before this one (assistant/responder.py at cfe4c1f), kept here only to measure.
_BASELINE = (
    r"\b(suicid\w*|kill(ing)? my ?self|end(ing)? (my|it all|my own) li(fe|ves)|end it all|"
    r"take my (own )?life|want(ed)? to die|wanna die|better off dead|"
    r"hurt(ing)? my ?self|harm(ing)? my ?self|self[- ]?harm\w*|cut(ting)? my ?self|"
    r"(don'?t|do not) want to (live|be alive|be here)|no reason to live|overdose)\b"
)


def load(path: Path = DATA) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score(rows: list[dict], detect) -> dict:
    out = {}
    for part in ("tune", "heldout"):
        sub = [r for r in rows if r["split"] == part]
        pos = [r for r in sub if r["risk"]]
        neg = [r for r in sub if not r["risk"]]
        missed = [r["text"] for r in pos if not detect(r["text"])]
        alarms = [r["text"] for r in neg if detect(r["text"])]
        out[part] = {"at_risk": len(pos), "negatives": len(neg),
                     "recall": 1 - len(missed) / len(pos) if pos else None,
                     "false_alarm_rate": len(alarms) / len(neg) if neg else None,
                     "missed": missed, "false_alarms": alarms}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", action="store_true", help="score the old single regex instead")
    ap.add_argument("--json", action="store_true", help="one JSON object")
    args = ap.parse_args(argv)
    if args.baseline:
        import re
        rx = re.compile(_BASELINE, re.I)
        detect = lambda t: bool(rx.search(t))  # noqa: E731
    else:
        detect = is_at_risk
    result = score(load(), detect)
    if args.json:
        print(json.dumps(result))
        return 0
    name = "old regex" if args.baseline else "assistant.safety"
    for part, r in result.items():
        print(f"{name} {part:8s} recall {r['recall']:.3f} ({r['at_risk'] - len(r['missed'])}/{r['at_risk']})  "
              f"false alarms {r['false_alarm_rate']:.3f} ({len(r['false_alarms'])}/{r['negatives']})")
        for t in r["missed"]:
            print(f"    missed: {t}")
        for t in r["false_alarms"]:
            print(f"    false alarm: {t}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
