"""Faults during a session, each through the real ``assistant`` command, with the session
log read back afterwards: the microphone unplugged, the STT engine failing, text-to-speech
failing, the log folder unwritable or the disk full, SIGINT/SIGTERM mid-utterance and
mid-speech, SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.hostile_audio import (
    ASSISTANT,
    Watched,
    assert_no_traceback,
    child_env,
    corpus_clips,
    read_jsonl,
    run_cli,
    session_logs,
    wait_for,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _turns(records: list[dict]) -> list[dict]:
    return [r for r in records if r["type"] == "turn"]


def _only_log(log_dir: Path) -> list[dict]:
    logs = session_logs(log_dir)
    assert len(logs) == 1, f"expected one session log in {log_dir}, found {logs}"
    return read_jsonl(logs[0])


def _unshare_ok(*flags: str) -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", *flags, "true"], capture_output=True).returncode == 0


# -- the microphone disappears ----------------------------------------------------------


@pytest.fixture(scope="module")
def mic_unplugged(pulse, datasets, tmp_path_factory, tiny_bundle):
    """Talk one turn, unplug the virtual mic, wait, plug it back, talk again, then Ctrl-C."""
    log_dir = tmp_path_factory.mktemp("mic-unplug")
    clip = corpus_clips(datasets, 1, start=5)[0]
    env = dict(pulse.env, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    w = Watched([ASSISTANT, "--no-speak", "--plain", "--log-dir", str(log_dir), "--model", str(tiny_bundle),
                 "--calibrate-seconds", "0.3"], env=env)
    try:
        assert w.wait_out("[listening]", 60), w.stderr
        pulse.play_into_mic(clip)
        assert w.wait_out("--- turn 1", 60), w.stdout + w.stderr
        assert w.wait_out("[listening]", 30, count=2)
        err_before = len(w.err)
        pulse.unload_mic()
        wait_for(lambda: w.proc.poll() is not None or len(w.err) > err_before, 8)
        after_unplug = {"stderr": "".join(w.err[err_before:]), "exited": w.proc.poll()}
        time.sleep(1)
        pulse.reload_mic()
        recovered = False
        if w.proc.poll() is None:
            time.sleep(1)
            pulse.play_into_mic(clip)
            recovered = w.wait_out("--- turn 2", 30)
            w.proc.send_signal(signal.SIGINT)
        rc = w.wait(30)
    finally:
        w.kill()
    return {"w": w, "rc": rc, "after": after_unplug, "recovered": recovered, "records": _only_log(log_dir)}


def test_mic_unplugged_recovers_or_exits_cleanly_and_logs_every_turn(mic_unplugged) -> None:
    w, records = mic_unplugged["w"], mic_unplugged["records"]
    assert_no_traceback(w.stdout + w.stderr)
    turns = _turns(records)
    assert turns and turns[0]["turn"] == 1 and turns[0]["source"] == "mic"
    assert records[-1]["type"] == "summary", "clean exit writes the summary"
    if mic_unplugged["recovered"]:
        assert [t["turn"] for t in turns] == [1, 2]
    else:  # a clean exit: the completed turn is logged, the exit says why
        assert mic_unplugged["after"]["exited"] is not None
        assert mic_unplugged["rc"] in (0, 3)
        assert [t["turn"] for t in turns] == [1]


def test_mic_unplugged_is_reported(mic_unplugged) -> None:
    said = mic_unplugged["after"]["stderr"].lower()
    assert any(word in said for word in ("microphone", "input device", "disconnected", "unplugged")), (
        f"nothing said within 8 s of the microphone disappearing (stderr: {said!r})")


# -- the speech-to-text engine fails ----------------------------------------------------


def test_stt_engine_failure_falls_back_to_sphinx_and_is_logged(tmp_path: Path, datasets, tiny_bundle) -> None:
    """--stt google with no network (a private network namespace): every turn falls back."""
    if not _unshare_ok("-n"):
        pytest.skip("unshare -n is not permitted here")
    clips = corpus_clips(datasets, 2, start=10)
    log_dir = tmp_path / "logs"
    done = run_cli(["unshare", "-n", ASSISTANT, "--input", *map(str, clips), "--stt", "google",
                    "--no-speak", "--plain", "--log-dir", str(log_dir), "--model", str(tiny_bundle)])
    assert_no_traceback(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    turns = _turns(_only_log(log_dir))
    assert len(turns) == 2
    for t in turns:
        assert t["stt"]["fallback"] == "sphinx", t["stt"]
        assert t["stt"]["error"], "the engine's error is logged"
        assert t["stt"]["engine"] in ("sphinx", "google")
    assert any(t["transcript"] for t in turns), "sphinx transcribed the fallback turns"
    assert "fell back to sphinx" in done.stdout


# -- text-to-speech fails ---------------------------------------------------------------


def test_tts_unavailable_prints_replies_and_goes_on(tmp_path: Path, datasets, tiny_bundle) -> None:
    """Speech on, but no audio output exists (no PulseAudio server, no sound card)."""
    clips = corpus_clips(datasets, 2, start=20)
    log_dir = tmp_path / "logs"
    env = child_env({"PULSE_SERVER": f"unix:{tmp_path}/no-such-socket", "ALSA_CONFIG_PATH": "/dev/null"})
    done = run_cli([ASSISTANT, "--input", *map(str, clips), "--plain", "--log-dir", str(log_dir),
                    "--model", str(tiny_bundle)], env=env)
    assert_no_traceback(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    assert "printed" in done.stderr, f"the user is told replies are printed: {done.stderr!r}"
    records = _only_log(log_dir)
    turns = _turns(records)
    assert len(turns) == 2
    for t in turns:
        assert f"assistant ({t['reply']['strategy']}): {t['reply']['text']}" in done.stdout


def test_tts_failing_mid_session_prints_reply_and_goes_on(pulse, tmp_path: Path, datasets, tiny_bundle,
                                                          monkeypatch) -> None:
    """The real espeak-ng speaker, whose synthesis breaks on the second reply (in-process)."""
    import io

    from assistant import tts
    from assistant.cli import build_parser, config_from_args
    from assistant.loop import run
    from assistant.ui import PlainUI

    real = tts.EspeakSynth.synthesize
    calls = {"n": 0}

    def flaky(self, text, style):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("espeak-ng crashed")
        return real(self, text, style)

    monkeypatch.setattr(tts.EspeakSynth, "synthesize", flaky)
    clips = corpus_clips(datasets, 3, start=30)
    log_dir = tmp_path / "logs"
    args = build_parser().parse_args(["--input", *map(str, clips), "--plain", "--log-dir", str(log_dir),
                                      "--model", str(tiny_bundle)])
    out, err = io.StringIO(), io.StringIO()
    code = run(config_from_args(args), PlainUI(out=out, err=err))
    assert code == 0, err.getvalue()
    turns = _turns(_only_log(log_dir))
    assert [t["turn"] for t in turns] == [1, 2, 3]
    assert "error" in turns[1]["speech"] and "error" not in turns[0]["speech"] and "error" not in turns[2]["speech"]
    assert turns[2]["speech"]["audio_seconds"] > 0, "speech works again after the failure"
    assert turns[1]["reply"]["text"] in out.getvalue()
    assert "printed instead" in err.getvalue()


# -- the log cannot be written ----------------------------------------------------------


def test_log_dir_not_creatable_is_said_and_conversation_goes_on(tmp_path: Path, datasets, tiny_bundle) -> None:
    blocker = tmp_path / "a-regular-file"
    blocker.write_text("not a folder\n")
    clips = corpus_clips(datasets, 2, start=40)
    done = run_cli([ASSISTANT, "--input", *map(str, clips), "--no-speak", "--plain",
                    "--log-dir", str(blocker / "logs"), "--model", str(tiny_bundle)])
    assert_no_traceback(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    assert "NOT being logged" in done.stderr and str(blocker) in done.stderr
    assert done.stdout.count("--- turn ") == 2
    assert "Session summary: 2 turn(s)" in done.stdout


@pytest.fixture(scope="module")
def disk_full(tmp_path_factory, datasets, tiny_bundle):
    """An 8 KiB tmpfs as the log folder: it fills up after a few turns."""
    if not _unshare_ok("-m"):
        pytest.skip("cannot mount a private tmpfs (unshare -m not permitted)")
    tmp = tmp_path_factory.mktemp("disk-full")
    mnt = tmp / "tiny"
    mnt.mkdir()
    kept = tmp / "kept"
    clips = corpus_clips(datasets, 12, start=50)
    script = (f'mount -t tmpfs -o size=8k,mode=0755 none "{mnt}" || exit 97; '
              f'"{ASSISTANT}" --input {" ".join(map(str, clips))} --no-speak --plain '
              f'--log-dir "{mnt}/logs" --model "{tiny_bundle}"; rc=$?; '
              f'cp -a "{mnt}/logs" "{kept}"; exit $rc')
    done = run_cli(["unshare", "-m", "sh", "-c", script], timeout=180)
    if done.returncode == 97:
        pytest.skip("cannot mount tmpfs here: " + done.stderr)
    return done, session_logs(kept)[0]


def test_disk_full_mid_session_is_said_and_conversation_goes_on(disk_full) -> None:
    done, _ = disk_full
    assert_no_traceback(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("--- turn ") == 12, "the conversation goes on after the disk fills"
    assert "NOT being logged" in done.stderr, done.stderr
    assert "No space left" in done.stderr or "disk full" in done.stderr
    assert done.stderr.count("NOT being logged") == 1, "said once, not per turn"


def test_disk_full_leaves_no_half_line(disk_full) -> None:
    _, log = disk_full
    records = read_jsonl(log)  # fails on a half-written last line
    turns = _turns(records)
    assert 1 <= len(turns) < 12
    assert [t["turn"] for t in turns] == list(range(1, len(turns) + 1))


# -- signals ----------------------------------------------------------------------------


def _long_utterance(datasets: Path) -> np.ndarray:
    import soundfile as sf

    parts = []
    for clip in corpus_clips(datasets, 3, start=60):
        y, _ = sf.read(str(clip), dtype="float32")
        parts.append(y)
    return np.concatenate(parts)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_speaking_exits_cleanly_with_summary(sig, pulse, tmp_path: Path, datasets, tiny_bundle) -> None:
    clips = corpus_clips(datasets, 4, start=70)
    log_dir = tmp_path / "logs"
    env = dict(pulse.env, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    w = Watched([ASSISTANT, "--input", *map(str, clips), "--plain", "--log-dir", str(log_dir),
                 "--model", str(tiny_bundle)], env=env)
    try:
        assert w.wait_out("[speaking]", 90, count=2), w.stdout + w.stderr
        time.sleep(0.2)
        w.proc.send_signal(sig)
        rc = w.wait(20)
    finally:
        w.kill()
    assert_no_traceback(w.stdout + w.stderr)
    assert rc in (0, 130, 143), rc
    assert "Session summary" in w.stdout
    records = _only_log(log_dir)
    assert records[0]["type"] == "session" and records[-1]["type"] == "summary"
    turns = _turns(records)
    shown = w.stdout.count("--- turn ")
    assert [t["turn"] for t in turns] == list(range(1, shown + 1)), "every turn shown is logged"
    assert turns[-1]["speech"].get("interrupted") is True
    assert records[-1]["turns"] == len(turns)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_utterance_exits_cleanly_with_summary(sig, pulse, tmp_path: Path, datasets, tiny_bundle) -> None:
    log_dir = tmp_path / "logs"
    clip = corpus_clips(datasets, 1, start=80)[0]
    env = dict(pulse.env, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    w = Watched([ASSISTANT, "--no-speak", "--plain", "--log-dir", str(log_dir), "--model", str(tiny_bundle),
                 "--calibrate-seconds", "0.3"], env=env)
    player = None
    try:
        assert w.wait_out("[listening]", 60), w.stderr
        pulse.play_into_mic(clip)
        assert w.wait_out("--- turn 1", 60), w.stdout + w.stderr
        assert w.wait_out("[listening]", 30, count=2)
        player = pulse.play_into_mic(_long_utterance(datasets), wait=False)
        time.sleep(2.0)  # in the middle of the second utterance
        assert "--- turn 2" not in w.stdout
        w.proc.send_signal(sig)
        rc = w.wait(20)
    finally:
        w.kill()
        if player is not None and player.poll() is None:
            player.kill()
            player.wait()
    assert_no_traceback(w.stdout + w.stderr)
    assert rc in (0, 130, 143), rc
    assert "Session summary" in w.stdout
    records = _only_log(log_dir)
    assert records[-1]["type"] == "summary"
    assert [t["turn"] for t in _turns(records)] == [1]


def test_sigkill_leaves_every_completed_turn_and_no_half_line(tmp_path: Path, datasets, tiny_bundle) -> None:
    clips = corpus_clips(datasets, 30, start=90)
    log_dir = tmp_path / "logs"
    w = Watched([ASSISTANT, "--input", *map(str, clips), "--no-speak", "--plain", "--log-dir", str(log_dir),
                 "--model", str(tiny_bundle)])
    try:
        assert wait_for(lambda: session_logs(log_dir) and session_logs(log_dir)[0].read_bytes().count(b"\n") >= 4, 90)
        # Kill at an arbitrary point inside a later turn.
        time.sleep(0.37)
        w.proc.send_signal(signal.SIGKILL)
        w.wait(10)
    finally:
        w.kill()
    records = read_jsonl(session_logs(log_dir)[0])  # asserts no partial last line
    turns = _turns(records)
    shown = w.stdout.count("--- turn ")
    assert len(turns) >= 3
    # A turn is shown before it is logged: at most the one being finished may be missing.
    assert shown - 1 <= len(turns) <= shown
    assert [t["turn"] for t in turns] == list(range(1, len(turns) + 1))


def test_every_log_line_is_fsynced(tmp_path: Path, monkeypatch) -> None:
    """The durability half of SIGKILL/power loss: one fsync per line written, before returning."""
    from assistant import session_log

    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(session_log.os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    log = session_log.SessionLog(tmp_path / "logs", "t1")
    for i in range(5):
        assert log.write({"type": "turn", "turn": i + 1})
        assert len(synced) == i + 1
    log.close()
    assert [r["turn"] for r in read_jsonl(log.path)] == [1, 2, 3, 4, 5]


def test_sphinx_worker_protocol_and_a_dead_worker_restarts() -> None:
    """The one sphinx decode path: the child process (assistant/sphinx_worker.py). Its
    protocol runs in memory here; a worker that died is started again for the next turn."""
    import io
    import json

    from assistant import stt
    from assistant.sphinx_worker import request, serve
    from assistant.types import Utterance

    pcm = stt.to_pcm16(np.zeros(8000, dtype=np.float32))
    out = io.BytesIO()
    serve(io.BytesIO(request(b"S") + request(b"C", pcm) + request(b"E") + request(b"F", pcm)), out)
    ready, *replies = out.getvalue().splitlines()
    assert ready == b"ready" and [json.loads(r) for r in replies] == [{"text": ""}, {"text": ""}]
    sphinx = stt.SphinxTranscriber()
    try:
        first = sphinx.worker()
        first._proc.kill()
        first._proc.wait()
        with pytest.raises(stt.SttError):  # a stream already on the dead worker fails cleanly
            stt._SphinxProcessStream(first)
        assert sphinx.transcribe(Utterance(samples=np.zeros(8000, dtype=np.float32))).engine == "sphinx"
        assert sphinx.worker() is not first and sphinx.worker().alive
    finally:
        sphinx.close()


def test_sigusr1_prints_every_threads_stack_and_the_session_goes_on(tmp_path: Path, datasets, tiny_bundle) -> None:
    """The tests' view into a stalled assistant (``Watched.wait_out`` asks on a timeout)."""
    clips = corpus_clips(datasets, 2, start=40)
    log_dir = tmp_path / "logs"
    w = Watched([ASSISTANT, "--input", *map(str, clips), "--no-speak", "--plain", "--log-dir", str(log_dir),
                 "--model", str(tiny_bundle)])
    try:
        assert w.wait_out("[starting]", 60), w.stdout + w.stderr
        w.dump_stacks()
        rc = w.wait(180)
    finally:
        w.kill()
    assert "most recent call first" in w.stderr and "run" in w.stderr, w.stderr
    assert rc == 0, w.stdout + w.stderr
    assert [t["turn"] for t in _turns(_only_log(log_dir))] == [1, 2]
