"""``assistant history``: list past sessions, export one as CSV, draw its emotion timeline."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.session_log import LOG_SUFFIX, LogLineError, TurnRecord, default_log_dir
from ser_model.labels import LABELS


class HistoryError(AssistantError):
    """A session cannot be found or read; ``str(err)`` is one line."""


@dataclass
class SessionRecord:
    """One session log, parsed."""

    path: Path
    session: str
    meta: dict = field(default_factory=dict)
    turns: list[TurnRecord] = field(default_factory=list)
    summary: dict | None = None
    bad_lines: int = 0


def read_session(path: Path) -> SessionRecord:
    """Parse a JSONL log; lines that are not complete JSON objects, or turns that cannot be
    read (:class:`TurnRecord`), are counted and skipped."""
    rec = SessionRecord(path=path, session=path.stem.removeprefix("session-"))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise HistoryError(f"cannot read {path}: {err.strerror or err}") from None
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            rec.bad_lines += 1
            continue
        if not isinstance(obj, dict):
            rec.bad_lines += 1
            continue
        kind = obj.get("type")
        if kind == "session":
            rec.meta = obj
            rec.session = obj.get("session", rec.session)
        elif kind == "turn":
            try:
                rec.turns.append(TurnRecord.from_json(obj))
            except LogLineError:
                rec.bad_lines += 1
        elif kind == "summary":
            rec.summary = obj
    return rec


def _log_files(log_dir: Path) -> list[Path]:
    return sorted(log_dir.glob(f"session-*{LOG_SUFFIX}")) if log_dir.is_dir() else []


def _started(rec: SessionRecord) -> tuple[str, str]:
    """Sort key: the session's start time (UTC, so offsets do not matter), then its id."""
    from datetime import UTC, datetime

    started = rec.meta.get("started_at")
    try:
        stamp = datetime.fromisoformat(started).astimezone(UTC).isoformat() if started else ""
    except (TypeError, ValueError):
        stamp = ""
    return (stamp or rec.session, rec.session)


def list_sessions(log_dir: Path) -> list[SessionRecord]:
    """Every session in ``log_dir``, oldest first (by start time; ids of one second are in
    random order)."""
    return sorted((read_session(p) for p in _log_files(log_dir)), key=_started)


def find_session(log_dir: Path, spec: str) -> SessionRecord:
    """A session by id, a unique start of it (``20240101``), a unique end of it (the short
    ``3fa2`` after the time), or the path of a log file."""
    p = Path(spec)
    if p.is_file():
        return read_session(p)
    ids = {f.name[len("session-"):-len(LOG_SUFFIX)]: f for f in _log_files(log_dir)}
    if spec in ids:
        return read_session(ids[spec])
    matches = sorted(i for i in ids if spec and (i.startswith(spec) or i.endswith(spec)))
    if not matches:
        raise HistoryError(f"no session {spec!r} in {log_dir} (run 'assistant history' to list them)")
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise HistoryError(f"{spec!r} matches {len(matches)} sessions ({shown}); give more of the id")
    return read_session(ids[matches[0]])


def plural(n: int, word: str) -> str:
    """``1 turn``, ``2 turns``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def dominant_emotion(labels: list[str]) -> str:
    """``mostly sad``; ``mixed (angry, sad)`` when the most frequent labels tie; ``no emotion``."""
    if not labels:
        return "no emotion"
    from collections import Counter

    counts = Counter(labels).most_common()
    top = [label for label, n in counts if n == counts[0][1]]
    if len(top) > 1:
        return f"mixed ({', '.join(sorted(top))})"
    return f"mostly {top[0]}"


CSV_COLUMNS = ["turn", "started_at", "ended_at", "source", "file", "audio_seconds", "transcript",
               "stt_engine", "stt_fallback", "emotion", "confidence", "uncertain",
               *[f"p_{label}" for label in LABELS], "reply", "strategy",
               "latency_stt_ms", "latency_ser_ms", "latency_reply_ms", "latency_total_ms"]


def turn_row(t: TurnRecord) -> dict[str, Any]:
    """One CSV row from a logged turn."""
    emo = t.emotion or {}
    lat = t.latency_ms
    row = {
        "turn": t.turn, "started_at": t.started_at, "ended_at": t.ended_at,
        "source": t.source, "file": t.file or "", "audio_seconds": t.audio_seconds,
        "transcript": t.transcript, "stt_engine": t.stt.get("engine"),
        "stt_fallback": t.stt.get("fallback") or "", "emotion": emo.get("label", ""),
        "confidence": emo.get("confidence", ""), "uncertain": t.uncertain,
        "reply": t.reply_text, "strategy": t.strategy,
        "latency_stt_ms": lat.get("stt"), "latency_ser_ms": lat.get("ser"),
        "latency_reply_ms": lat.get("reply"), "latency_total_ms": lat.get("total"),
    }
    for label in LABELS:
        row[f"p_{label}"] = t.probs.get(label, "")
    return row


def export_csv(rec: SessionRecord, out: Path) -> int:
    """Write the session's turns as CSV; returns the number of rows."""
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for t in rec.turns:
            w.writerow(turn_row(t))
    return len(rec.turns)


def plot_timeline(rec: SessionRecord, out: Path) -> None:
    """Per-turn probability of each emotion as lines, and the detected label as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    turns = [t for t in rec.turns if t.emotion]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(rec.turns) + 3), 4.5))
    if not turns:
        ax.text(0.5, 0.5, "no emotion in this session (text mode?)", ha="center", va="center")
    else:
        x = [t.turn for t in turns]
        for label in LABELS:
            y = [float(t.probs.get(label, 0.0)) for t in turns]
            ax.plot(x, y, marker=".", label=label)
        for t in turns:
            ax.scatter([t.turn], [t.confidence], s=90, facecolors="none",
                       edgecolors="black" if not t.uncertain else "grey", zorder=3)
            ax.annotate(t.label + ("?" if t.uncertain else ""),
                        (t.turn, t.confidence), textcoords="offset points",
                        xytext=(0, 8), ha="center", fontsize=8)
        ax.set_xticks(x)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("turn")
    ax.set_ylabel("probability")
    ax.set_title(f"Emotion timeline, session {rec.session}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(args) -> int:
    log_dir = Path(args.log_dir) if args.log_dir else default_log_dir()
    if not args.session:
        if args.csv or args.plot:
            raise HistoryError("--csv and --plot need a SESSION (run 'assistant history' to list them)")
        sessions = list_sessions(log_dir)
        if not sessions:
            print(f"no sessions in {log_dir}")
            return 0
        print(f"sessions in {log_dir} (oldest first):")
        for s in sessions:
            labels = [t.label for t in s.turns if t.label is not None]
            started = s.meta.get("started_at", "?")
            flag = "" if s.summary else "  (ended abruptly)"
            print(f"  {s.session}  {started}  {plural(len(s.turns), 'turn'):>9}  "
                  f"source {s.meta.get('source', '?'):<4}  {dominant_emotion(labels)}{flag}")
        print("(pass an id, its start or its last 4 characters to 'assistant history SESSION')")
        return 0
    rec = find_session(log_dir, args.session)
    did = False
    if args.csv:
        n = export_csv(rec, Path(args.csv))
        print(f"wrote {plural(n, 'turn')} to {args.csv}")
        did = True
    if args.plot:
        plot_timeline(rec, Path(args.plot))
        print(f"wrote the emotion timeline to {args.plot}")
        did = True
    if not did:
        print(f"session {rec.session}: {plural(len(rec.turns), 'turn')}, log {rec.path}")
        for t in rec.turns:
            label = f"{t.label} {t.confidence:.2f}" if t.emotion else "-"
            print(f"  {t.turn:>3}  {label:<16} you: {t.transcript!r}  -> {t.reply_text}")
    if rec.bad_lines:
        print(f"note: {rec.bad_lines} incomplete line(s) skipped", file=sys.stderr)
    return 0
