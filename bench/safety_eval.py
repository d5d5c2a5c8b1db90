"""Recall and false-alarm rate of the safety net, per evaluation set and split.

Two sets, written independently by two engineers (each with a held-out part written before
any tuning): tests/data/safety_eval.jsonl and tests/data/safety_eval_signs.jsonl.

Usage: python bench/safety_eval.py [--baseline] [--show]
  --baseline  measure the old single regex (assistant.responder.SAFETY_PATTERNS)
  --show      list the misses and false alarms
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "tests" / "data"
SETS = ("safety_eval.jsonl", "safety_eval_signs.jsonl")


def load(name: str = SETS[0]) -> list[dict]:
    return [json.loads(line) for line in (DATA_DIR / name).read_text().splitlines() if line.strip()]


def evaluate(detect, rows: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for split in ("tune", "heldout"):
        part = [r for r in rows if r["split"] == split]
        pos = [r for r in part if r["risk"]]
        neg = [r for r in part if not r["risk"]]
        misses = [r["text"] for r in pos if not detect(r["text"])]
        alarms = [r["text"] for r in neg if detect(r["text"])]
        out[split] = {"risk": len(pos), "safe": len(neg),
                      "recall": 1 - len(misses) / len(pos), "false_alarm": len(alarms) / len(neg),
                      "misses": misses, "alarms": alarms}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--show", action="store_true")
    args = ap.parse_args()
    if args.baseline:
        from assistant.responder import SAFETY_PATTERNS

        def detect(text):
            return bool(SAFETY_PATTERNS.search(text))
    else:
        from assistant.safety import is_risk as detect
    for name in SETS:
        for split, m in evaluate(detect, load(name)).items():
            print(f"{name:24s} {split:8s} recall {m['recall']:.3f} ({m['risk'] - len(m['misses'])}/{m['risk']})  "
                  f"false alarms {m['false_alarm']:.3f} ({len(m['alarms'])}/{m['safe']})")
            if args.show and split == "tune":  # never look at held-out misses while tuning
                for t in m["misses"]:
                    print("   MISS ", t)
                for t in m["alarms"]:
                    print("   ALARM", t)

if __name__ == "__main__":
    main()
