"""The emotion transcript: one JSONL file per session, one JSON object per line.

Every line is written with a single ``os.write`` of the whole line and then fsynced, so a
crash or SIGKILL never leaves half a line and every completed turn is on disk. Files are
mode 0600 inside a 0700 folder. A log that cannot be written (folder not writable, disk full)
never stops the conversation: a short or failed write is cut back to the start of its line
(``ftruncate``), the first failure is reported once through ``on_error`` and logging stops.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.types import EmotionWindow, Turn

LOG_SUFFIX = ".jsonl"


def default_log_dir() -> Path:
    """The platform's user data folder for the assistant's logs."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("empathetic-assistant", appauthor=False)) / "sessions"


def iso(ts: float) -> str:
    """ISO 8601 time with milliseconds and the local UTC offset."""
    return datetime.fromtimestamp(ts, tz=UTC).astimezone().isoformat(timespec="milliseconds")


def new_session_id(now: float | None = None) -> str:
    """A sortable, unique session id such as ``20240101-120000-3fa2``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now if now is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(2)}"


class LogLineError(AssistantError, ValueError):
    """A log line that is JSON but not a readable record; ``str(err)`` is one line."""


def _mapping(obj: Mapping[str, Any], key: str, *, optional: bool = True) -> Mapping[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None if optional else {}
    if not isinstance(value, Mapping):
        raise LogLineError(f"turn line: {key!r} is not an object")
    return value


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LogLineError(f"turn line: {what} is not a number")
    return value


@dataclass(frozen=True)
class TurnRecord:
    """One ``{"type": "turn"}`` line of a session log: what :class:`SessionLog` writes and
    ``assistant history`` reads back (the fields are in ``docs/CONTRACTS.md``).

    :meth:`from_json` takes lines of older versions, which lack some fields (they get the
    defaults here); keys this class does not know are kept in ``extra`` and written back.
    """

    turn: int
    session: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    source: str | None = None
    file: str | None = None
    audio_seconds: float | None = None
    transcript: str = ""
    stt: Mapping[str, Any] = field(default_factory=dict)
    """``engine``, ``seconds``, and ``confidence``, ``error``, ``fallback`` when there are."""
    emotion: Mapping[str, Any] | None = None
    """``label``, ``confidence``, ``probs``, ...; None without an emotion."""
    uncertain: bool | None = None
    reply: Mapping[str, Any] = field(default_factory=dict)
    """``text``, ``strategy``, ``tts``."""
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    words_emotion: Mapping[str, Any] | None = None
    emotion_note: str | None = None
    file_offset_s: float | None = None
    windows: tuple[Mapping[str, Any], ...] = ()
    voice_profile: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Other keys (``audio_file``, ``endpoint``, ``speech``), written after the rest."""

    @classmethod
    def from_turn(cls, turn: Turn, *, extra: Mapping[str, Any] | None = None) -> TurnRecord:
        """The record of a completed turn (numbers rounded as logged)."""
        u, t = turn.utterance, turn.transcript
        stt: dict[str, Any] = {"engine": t.engine, "seconds": round(t.seconds, 4)}
        if t.confidence is not None:
            stt["confidence"] = round(float(t.confidence), 4)
        if t.error:
            stt["error"] = t.error
        if t.fallback:
            stt["fallback"] = t.fallback
        emotion = None
        if turn.emotion is not None:
            emotion = turn.emotion.to_dict()
            emotion["uncertain"] = bool(turn.uncertain)
            emotion["seconds"] = round(float(turn.emotion.seconds), 4)
        style = turn.reply.tts_style
        return cls(
            turn=turn.turn, session=turn.session, started_at=iso(u.started_at), ended_at=iso(u.ended_at),
            source=u.source, file=u.file, audio_seconds=round(u.seconds, 3), transcript=t.text,
            stt=stt, emotion=emotion, uncertain=bool(turn.uncertain),
            reply={"text": turn.reply.text, "strategy": turn.reply.strategy,
                   "tts": {"rate": style.rate, "volume": style.volume, "pitch": style.pitch}},
            latency_ms={k: round(float(v), 1) for k, v in turn.latency_ms.items()},
            words_emotion=dict(turn.reply.words_emotion) if turn.reply.words_emotion is not None else None,
            emotion_note=turn.emotion_note or None,
            file_offset_s=round(float(u.offset), 3) if u.offset is not None else None,
            windows=tuple(window_record(w) for w in turn.windows),
            voice_profile={"clips": int(turn.voice_clips)} if turn.voice_clips is not None else None,
            extra=dict(extra or {}))

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the line (keys in the logged order; optional ones only when set)."""
        record: dict[str, Any] = {
            "type": "turn", "session": self.session, "turn": self.turn,
            "started_at": self.started_at, "ended_at": self.ended_at, "source": self.source,
            "file": self.file, "audio_seconds": self.audio_seconds, "transcript": self.transcript,
            "stt": dict(self.stt), "emotion": dict(self.emotion) if self.emotion is not None else None,
            "uncertain": self.uncertain, "reply": dict(self.reply), "latency_ms": dict(self.latency_ms),
        }
        if self.words_emotion is not None:
            record["words_emotion"] = dict(self.words_emotion)
        if self.emotion_note:
            record["emotion_note"] = self.emotion_note
        if self.file_offset_s is not None:
            record["file_offset_s"] = self.file_offset_s
        if self.windows:
            record["windows"] = [dict(w) for w in self.windows]
        if self.voice_profile is not None:
            record["voice_profile"] = dict(self.voice_profile)
        record.update(self.extra)
        return record

    @classmethod
    def from_json(cls, obj: Any) -> TurnRecord:
        """Read a parsed turn line; a field an older log lacks gets its default. Raises
        :class:`LogLineError` (one line) when the line is not a turn that can be read."""
        if not isinstance(obj, Mapping) or obj.get("type") != "turn":
            raise LogLineError("not a turn line")
        turn = obj.get("turn")
        if isinstance(turn, bool) or not isinstance(turn, int):
            raise LogLineError("turn line: 'turn' is not a number")
        emotion = _mapping(obj, "emotion")
        if emotion is not None:
            if not isinstance(emotion.get("label"), str):
                raise LogLineError("turn line: the emotion has no label")
            if _number(emotion.get("confidence"), "the emotion's confidence") is None:
                raise LogLineError("turn line: the emotion has no confidence")
            if emotion.get("probs") is not None and not isinstance(emotion["probs"], Mapping):
                raise LogLineError("turn line: 'probs' is not an object")
        windows = obj.get("windows") or ()
        if not isinstance(windows, list | tuple) or not all(isinstance(w, Mapping) for w in windows):
            raise LogLineError("turn line: 'windows' is not a list of objects")
        transcript = obj.get("transcript")
        if transcript is not None and not isinstance(transcript, str):
            raise LogLineError("turn line: 'transcript' is not text")
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            turn=turn, session=str(obj.get("session") or ""), started_at=obj.get("started_at"),
            ended_at=obj.get("ended_at"), source=obj.get("source"), file=obj.get("file"),
            audio_seconds=_number(obj.get("audio_seconds"), "'audio_seconds'"),
            transcript=transcript or "", stt=_mapping(obj, "stt", optional=False),
            emotion=emotion, uncertain=obj.get("uncertain"),
            reply=_mapping(obj, "reply", optional=False),
            latency_ms=_mapping(obj, "latency_ms", optional=False),
            words_emotion=_mapping(obj, "words_emotion"), emotion_note=obj.get("emotion_note"),
            file_offset_s=_number(obj.get("file_offset_s"), "'file_offset_s'"),
            windows=tuple(windows), voice_profile=_mapping(obj, "voice_profile"),
            extra={k: v for k, v in obj.items() if k not in known and k != "type"})

    # -- what readers ask of a turn --------------------------------------------------
    @property
    def label(self) -> str | None:
        """The emotion's label; None without an emotion."""
        return self.emotion["label"] if self.emotion is not None else None

    @property
    def confidence(self) -> float | None:
        return float(self.emotion["confidence"]) if self.emotion is not None else None

    @property
    def probs(self) -> Mapping[str, float]:
        return (self.emotion or {}).get("probs") or {}

    @property
    def reply_text(self) -> str:
        return self.reply.get("text", "")

    @property
    def strategy(self) -> str:
        return self.reply.get("strategy", "")


def turn_record(turn: Turn, *, extra: Mapping[str, Any] | None = None) -> dict:
    """The JSON object logged for one turn (see :class:`TurnRecord`)."""
    return TurnRecord.from_turn(turn, extra=extra).to_json()


def window_record(window: EmotionWindow) -> dict:
    """One entry of a turn's ``windows`` list: times in seconds from the utterance start
    (add ``file_offset_s`` for the time in the file), and the label, confidence and
    ``uncertain`` flag; ``label`` null when the window holds no speech."""
    e = window.emotion
    return {"start_s": round(window.start_s, 3), "end_s": round(window.end_s, 3),
            "label": e.label if e is not None else None,
            "confidence": round(float(e.confidence), 4) if e is not None else None,
            "uncertain": bool(window.uncertain)}


class SessionLog:
    """Append-only JSONL log of one session."""

    def __init__(self, log_dir: Path, session: str, *,
                 on_error: Callable[[str], None] = lambda msg: None) -> None:
        self.dir = Path(log_dir)
        self.session = session
        self.path = self.dir / f"session-{session}{LOG_SUFFIX}"
        self._on_error = on_error
        self._fd: int | None = None
        self.failed: str | None = None
        """One-line reason when the log is not being kept."""
        self.discarded = False
        """True once :meth:`discard` removed the log (a session without turns)."""
        try:
            created = not self.dir.exists()
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if created or self.dir.stat().st_uid == os.getuid():
                os.chmod(self.dir, 0o700)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            os.fchmod(self._fd, 0o600)
        except OSError as err:
            self._fail(f"cannot create the session log in {self.dir}: {err.strerror or err}")

    @property
    def active(self) -> bool:
        """True while lines are being written."""
        return self._fd is not None

    def _fail(self, reason: str) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        if self.failed is None:
            self.failed = reason
            self._on_error(reason + " - the conversation goes on, but this session is NOT being logged")

    def write(self, record: Mapping[str, Any]) -> bool:
        """Append one JSON line (one ``os.write``, then fsync). False when not logged."""
        if self._fd is None:
            return False
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        offset: int | None = None
        try:
            offset = os.lseek(self._fd, 0, os.SEEK_END)
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "No space left on device (short write)")
            os.fsync(self._fd)
        except OSError as err:
            self._truncate(offset)
            self._fail(f"writing the session log {self.path} failed: {err.strerror or err}")
            return False
        return True

    def _truncate(self, offset: int | None) -> None:
        """Cut the file back to ``offset`` (the start of the line that failed), so no half
        line stays behind after a short write or a failed fsync."""
        if self._fd is None or offset is None:
            return
        try:
            os.ftruncate(self._fd, offset)
            os.fsync(self._fd)
        except OSError:
            pass  # nothing more we can do; the reason is reported by _fail

    def write_session(self, metadata: Mapping[str, Any]) -> bool:
        """The first line: ``{"type": "session", ...}``."""
        return self.write({"type": "session", "session": self.session, **metadata})

    def write_turn(self, turn: Turn, *, extra: Mapping[str, Any] | None = None) -> bool:
        """One turn line."""
        return self.write(turn_record(turn, extra=extra))

    def write_summary(self, summary: Mapping[str, Any]) -> bool:
        """The last line, on a clean exit: ``{"type": "summary", ...}``."""
        return self.write({"type": "summary", "session": self.session, **summary})

    def discard(self) -> None:
        """Close and remove the log: a session with no turn keeps no file (all inputs
        unreadable, empty typed input, Ctrl-C before the first turn)."""
        was_open = self._fd is not None
        self.close()
        if was_open:
            try:
                self.path.unlink()
            except OSError:
                pass  # left behind: history lists it as a session of 0 turns
        self.discarded = True

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None

    def save_audio_path(self, turn: int) -> Path:
        """Where ``--save-audio`` keeps the utterance of ``turn``."""
        return self.dir / f"session-{self.session}-turn{turn:03d}.wav"
