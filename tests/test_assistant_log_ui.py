"""Session log (permissions, one write a line, failures), history export, and both UIs."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import time

import numpy as np
import pytest

from assistant import session_log
from assistant.history import export_csv, find_session, list_sessions, plot_timeline
from assistant.session_log import SessionLog
from assistant.types import Reply, Transcript, Turn, Utterance
from assistant.ui import PlainUI, RichUI, format_summary
from ser_model.result import EmotionResult

PROBS = {"neutral": 0.05, "happy": 0.05, "sad": 0.7, "angry": 0.05, "fearful": 0.05,
         "disgust": 0.05, "surprised": 0.05}


def make_turn(n=1, *, emotion=True, source="file"):
    now = time.time()
    utt = Utterance(samples=np.zeros(16000, dtype=np.float32), started_at=now - 1.2, ended_at=now,
                    source=source, file="/data/x.flac" if source == "file" else None)
    emo = EmotionResult("sad", 0.7, PROBS, "fake-v0", 0.02) if emotion else None
    return Turn(session="s1", turn=n, utterance=utt,
                transcript=Transcript("i lost my keys", "sphinx", seconds=0.2),
                emotion=emo, uncertain=not emotion,
                reply=Reply("That sounds hard.", "validate_sadness"),
                latency_ms={"stt": 200.0, "ser": 20.0, "reply": 0.3, "total": 240.0})


def test_log_permissions_and_line_format(tmp_path):
    log_dir = tmp_path / "new" / "logs"
    log = SessionLog(log_dir, "s1")
    assert log.write_session({"started_at": "x"})
    assert log.write_turn(make_turn(1))
    assert log.write_turn(make_turn(2, emotion=False, source="text"))
    assert log.write_summary({"turns": 2})
    log.close()
    assert stat.S_IMODE(os.stat(log_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600
    lines = [json.loads(l) for l in log.path.read_text().splitlines()]
    assert [l["type"] for l in lines] == ["session", "turn", "turn", "summary"]
    t = lines[1]
    for key in ("session", "turn", "started_at", "ended_at", "source", "file", "audio_seconds",
                "transcript", "stt", "emotion", "reply", "latency_ms"):
        assert key in t
    assert t["emotion"]["label"] == "sad" and t["emotion"]["uncertain"] is False
    assert abs(sum(t["emotion"]["probs"].values()) - 1) < 1e-6
    assert "T" in t["started_at"] and t["ended_at"] >= t["started_at"]
    assert lines[2]["emotion"] is None and lines[2]["source"] == "text"


def test_each_line_is_one_write_then_fsync(tmp_path, monkeypatch):
    calls = []
    real_write, real_fsync = os.write, os.fsync
    monkeypatch.setattr(session_log.os, "write", lambda fd, data: calls.append(("write", data)) or real_write(fd, data))
    monkeypatch.setattr(session_log.os, "fsync", lambda fd: calls.append(("fsync", None)) or real_fsync(fd))
    log = SessionLog(tmp_path, "s1")
    log.write_turn(make_turn(1))
    log.write_turn(make_turn(2))
    assert [c[0] for c in calls] == ["write", "fsync", "write", "fsync"]
    assert all(c[1].endswith(b"\n") and c[1].count(b"\n") == 1 for c in calls if c[0] == "write")


def test_disk_full_is_reported_once_and_logging_stops(tmp_path, monkeypatch):
    messages = []
    log = SessionLog(tmp_path, "s1", on_error=messages.append)
    assert log.write_turn(make_turn(1))

    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(session_log.os, "write", full)
    assert not log.write_turn(make_turn(2))
    assert not log.write_turn(make_turn(3))
    assert len(messages) == 1 and "No space left" in messages[0] and "NOT being logged" in messages[0]
    assert not log.active and log.failed


def test_history_lists_exports_csv_and_plots(tmp_path):
    log = SessionLog(tmp_path, "20240101-000000-abcd")
    log.write_session({"started_at": "2024-01-01T00:00:00+00:00", "source": "file"})
    for n in range(1, 4):
        log.write_turn(make_turn(n))
    log.close()
    with open(log.path, "a") as fh:  # a torn last line (e.g. an old crash) is skipped, not fatal
        fh.write('{"type": "turn", "tur')
    (rec,) = list_sessions(tmp_path)
    assert len(rec.turns) == 3 and rec.bad_lines == 1
    rec = find_session(tmp_path, "20240101")
    out = tmp_path / "t.csv"
    assert export_csv(rec, out) == 3
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["emotion"] == "sad" and float(rows[0]["p_sad"]) == pytest.approx(0.7)
    assert rows[2]["turn"] == "3" and rows[0]["transcript"] == "i lost my keys"
    png = tmp_path / "t.png"
    plot_timeline(rec, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_plain_ui_renders_turn_and_summary():
    out, err = io.StringIO(), io.StringIO()
    ui = PlainUI(out=out, err=err)
    ui.state("listening")
    ui.level(0.3)
    ui.turn(make_turn(1))
    ui.notice("something went wrong")
    ui.summary({"turns": 1, "emotions": {"sad": 1}, "median_latency_ms": 240.0, "log": "/x.jsonl"})
    text = out.getvalue()
    assert "[listening]" in text and "you: i lost my keys" in text
    assert "emotion: sad 0.70" in text and "sad" in text and "0.70" in text
    assert "That sounds hard." in text and "total 240 ms" in text
    assert "\x1b[" not in text  # no escape codes in plain output
    assert "median latency: 240 ms" in text and "/x.jsonl" in text
    assert err.getvalue().strip() == "assistant: something went wrong"


def test_rich_ui_renders_without_a_terminal():
    from rich.console import Console

    buf = io.StringIO()
    ui = RichUI(console=Console(file=buf, force_terminal=True, width=100))
    ui.start()
    for state in ("calibrating", "listening", "thinking", "speaking"):
        ui.state(state)
        ui.level(0.1)
    ui.turn(make_turn(1))
    ui.turn(make_turn(2, emotion=False, source="text"))
    ui.stop()
    ui.summary({"turns": 2, "emotions": {"sad": 1, "none": 1}, "median_latency_ms": 240.0, "log": None,
                "log_error": "disk full"})
    text = buf.getvalue()
    assert "\x1b[" in text  # really rendered for a terminal
    for needle in ("i lost my keys", "That sounds hard.", "turn 1", "sad", "total 240 ms", "█",
                   "listening", "NOT kept"):
        assert needle in text, needle
    # the status line with the level meter renders on its own
    ui.state("listening")
    ui.level(0.5)
    status = Console(file=io.StringIO(), width=100)
    status.print(ui.render_status())
    assert "dBFS" in status.file.getvalue()


def test_summary_lists_failed_inputs():
    text = format_summary({"turns": 0, "emotions": {}, "median_latency_ms": None, "failed_inputs": 2, "log": "/l"})
    assert "unreadable inputs: 2" in text and "n/a" in text


def test_short_write_is_cut_back_to_the_line_start(tmp_path, monkeypatch):
    """Disk full: os.write writes part of a line; the part is truncated away, said once."""
    said = []
    log = SessionLog(tmp_path / "logs", "s1", on_error=said.append)
    assert log.write_turn(make_turn(1))
    real_write = os.write

    def short_write(fd, data):
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(session_log.os, "write", short_write)
    assert not log.write_turn(make_turn(2))
    assert not log.write_turn(make_turn(3))
    monkeypatch.setattr(session_log.os, "write", real_write)
    lines = log.path.read_bytes().decode().splitlines(keepends=True)
    assert len(lines) == 1 and lines[0].endswith("\n") and json.loads(lines[0])["turn"] == 1
    assert len(said) == 1 and "NOT being logged" in said[0] and "No space left" in said[0]


def test_windows_and_file_offset_are_logged_and_shown():
    from dataclasses import replace

    from assistant.types import EmotionWindow

    base = make_turn(1)
    emo = base.emotion
    turn = replace(base, utterance=replace(base.utterance, offset=30.0),
                   windows=(EmotionWindow(0.0, 3.0, emo, uncertain=False),
                            EmotionWindow(3.0, 6.0, None)))
    rec = session_log.turn_record(turn)
    assert rec["file_offset_s"] == 30.0
    assert rec["windows"] == [
        {"start_s": 0.0, "end_s": 3.0, "label": "sad", "confidence": 0.7, "uncertain": False},
        {"start_s": 3.0, "end_s": 6.0, "label": None, "confidence": None, "uncertain": True}]
    out = io.StringIO()
    PlainUI(out=out, err=io.StringIO()).turn(turn)
    assert "from 30.0 s" in out.getvalue() and "over time: 30-33 s sad, 33-36 s -" in out.getvalue()


def _write_log(log_dir, session, started_at, labels):
    import dataclasses

    log = SessionLog(log_dir, session)
    log.write_session({"started_at": started_at, "source": "file"})
    for n, label in enumerate(labels, 1):
        turn = make_turn(n)
        log.write_turn(dataclasses.replace(turn, emotion=dataclasses.replace(turn.emotion, label=label)))
    log.write_summary({"turns": len(labels)})
    log.close()


def test_history_listing_ties_plurals_time_order_and_short_ids(tmp_path, capsys):
    """A 1-1 tie is 'mixed', not 'mostly angry'; '1 turn'; sessions by start time, not by the
    random part of the id; the last 4 characters of an id find it; ambiguity is one clear line."""
    import argparse

    from assistant import history

    # same second: file-name order (0000 first) is not time order (ffff started first)
    _write_log(tmp_path, "20240101-120000-ffff", "2024-01-01T12:00:00.100+00:00", ["angry", "sad"])
    _write_log(tmp_path, "20240101-120000-0000", "2024-01-01T12:00:00.900+00:00", ["sad"])
    _write_log(tmp_path, "20240101-110000-abcd", "2024-01-01T13:30:00.000+02:00", ["sad", "sad", "happy"])
    assert [s.session for s in list_sessions(tmp_path)] == [
        "20240101-110000-abcd", "20240101-120000-ffff", "20240101-120000-0000"]
    args = argparse.Namespace(log_dir=str(tmp_path), session=None, csv=None, plot=None)
    assert history.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "3 turns" in lines[1] and "mostly sad" in lines[1]
    assert "2 turns" in lines[2] and "mixed (angry, sad)" in lines[2] and "mostly" not in lines[2]
    assert "1 turn " in lines[3] and "1 turns" not in lines[3]
    assert find_session(tmp_path, "abcd").session == "20240101-110000-abcd"
    assert find_session(tmp_path, "20240101-120000-0").session == "20240101-120000-0000"
    with pytest.raises(history.HistoryError, match=r"'20240101-12' matches 2 sessions \(20240101-120000-0000, "
                                                   r"20240101-120000-ffff\); give more of the id"):
        find_session(tmp_path, "20240101-12")
    with pytest.raises(history.HistoryError, match="no session '\\*'"):
        find_session(tmp_path, "*")  # not a glob


def test_stt_none_says_words_are_off_not_nothing_recognised():
    import dataclasses

    from rich.console import Console

    turn = make_turn(1)
    off = dataclasses.replace(turn, transcript=Transcript("", "none", seconds=0.0))
    missed = dataclasses.replace(turn, transcript=Transcript("", "sphinx", seconds=0.2))
    out = io.StringIO()
    PlainUI(out=out, err=io.StringIO()).turn(off)
    assert "you: (words off: --stt none" in out.getvalue() and "nothing recognised" not in out.getvalue()
    out = io.StringIO()
    PlainUI(out=out, err=io.StringIO()).turn(missed)
    assert "you: (nothing recognised)" in out.getvalue()
    buf = io.StringIO()
    ui = RichUI(console=Console(file=buf, force_terminal=False, width=120))
    ui.start()
    ui.turn(off)
    ui.stop()
    assert "words off: --stt none" in buf.getvalue()


def test_turn_record_round_trips_and_is_what_the_log_holds(tmp_path):
    from dataclasses import replace

    from assistant.session_log import TurnRecord
    from assistant.types import EmotionWindow

    base = make_turn(2)
    turn = replace(base, utterance=replace(base.utterance, offset=12.5), voice_clips=3,
                   emotion_note=None, windows=(EmotionWindow(0.0, 3.0, base.emotion, uncertain=False),))
    extra = {"speech": {"engine": "none"}, "endpoint": {"words_at_pause": "hi", "silence_s": 0.3}}
    log = SessionLog(tmp_path, "s1")
    log.write_turn(turn, extra=extra)
    log.close()
    line = json.loads(log.path.read_text().splitlines()[0])
    rec = TurnRecord.from_json(line)
    assert rec.to_json() == line and list(rec.to_json()) == list(line)  # same keys, same order
    assert TurnRecord.from_json(json.loads(json.dumps(rec.to_json()))) == rec
    assert (rec.turn, rec.label, rec.confidence, rec.reply_text, rec.strategy) == (
        2, "sad", 0.7, "That sounds hard.", "validate_sadness")
    assert rec.file_offset_s == 12.5 and rec.voice_profile == {"clips": 3} and rec.extra == extra


def test_an_old_log_still_reads_and_a_corrupt_turn_is_skipped(tmp_path):
    """A first-version line (no windows, voice profile, offset, words_emotion, stt block ...)
    reads with defaults; a turn whose fields are the wrong kind is one skipped line, not a crash."""
    import argparse

    from assistant import history

    old = {"type": "turn", "session": "20230101-000000-0001", "turn": 1, "source": "file",
           "transcript": "hello", "emotion": {"label": "happy", "confidence": 0.8},
           "reply": {"text": "Nice!"}, "latency_ms": {"total": 300.0}}
    corrupt = [{"type": "turn", "turn": "two"}, {"type": "turn", "turn": 3, "emotion": "sad"},
               {"type": "turn", "turn": 4, "emotion": {"label": "sad"}}, [1, 2]]
    path = tmp_path / "session-20230101-000000-0001.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in [{"type": "session", "source": "file"}, old, *corrupt]) + "\n")
    rec = find_session(tmp_path, "0001")
    assert len(rec.turns) == 1 and rec.bad_lines == 4
    (t,) = rec.turns
    assert t.label == "happy" and t.windows == () and t.voice_profile is None and t.stt == {}
    out = tmp_path / "old.csv"
    assert export_csv(rec, out) == 1
    row = next(csv.DictReader(out.open()))
    assert row["emotion"] == "happy" and row["reply"] == "Nice!" and row["p_sad"] == ""
    assert history.main(argparse.Namespace(log_dir=str(tmp_path), session="0001", csv=None, plot=None)) == 0
