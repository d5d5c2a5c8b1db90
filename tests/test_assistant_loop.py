"""The loop in-process, with real files and the real default STT (Whisper); a fake emotion model where needed."""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from assistant import loop
from assistant.config import AssistantConfig, EmotionConfig, InputConfig, LogConfig, SpeechConfig
from assistant.emotion import EmotionEngine
from assistant.stt import SttError, Transcriber
from assistant.types import Transcript, Utterance
from assistant.ui import PlainUI
from ser_model.errors import NoSpeechError
from ser_model.result import EmotionResult


class FakeRecognizer:
    """Stands in for ser_model.EmotionRecognizer; records the threads it ran on."""

    model_version = "fake-v0"

    def __init__(self, label="sad", confidence=0.8, delay=0.0):
        self.label, self.confidence, self.delay = label, confidence, delay
        self.calls = []

    def predict(self, samples, sample_rate):
        start = time.perf_counter()
        self.calls.append((threading.current_thread().name, start, len(samples), sample_rate))
        if self.delay:
            time.sleep(self.delay)
        if not np.any(np.abs(samples) > 1e-4):
            raise NoSpeechError("silence")
        rest = (1 - self.confidence) / 6
        probs = {k: rest for k in ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")}
        probs[self.label] = self.confidence
        return EmotionResult(self.label, self.confidence, probs, self.model_version,
                             time.perf_counter() - start)


@pytest.fixture
def fake_model(monkeypatch):
    rec = FakeRecognizer()
    monkeypatch.setattr(loop, "make_recognizer", lambda cfg: EmotionEngine(lambda: rec))
    return rec


def ravdess_files(datasets, n, actor="Actor_05"):
    return sorted((datasets / "ravdess" / actor).glob("*.flac"))[:n]


def read_log(log_dir: Path) -> list[dict]:
    (path,) = sorted(log_dir.glob("session-*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def config(tmp_path, **input_kw):
    return AssistantConfig(input=InputConfig(**input_kw), speech=SpeechConfig(speak=False),
                           log=LogConfig(dir=str(tmp_path / "logs")))


def test_replay_files_one_turn_each_bad_file_exit_2(tmp_path, datasets, fake_model):
    files = [str(p) for p in ravdess_files(datasets, 3)]
    bad = tmp_path / "not-audio.wav"
    bad.write_text("this is not audio")
    out, err = io.StringIO(), io.StringIO()
    cfg = config(tmp_path, files=(files[0], str(bad), files[1], str(tmp_path / "missing.flac"), files[2]))
    code = loop.run(cfg, PlainUI(out=out, err=err))
    assert code == loop.EXIT_INPUT_FAILED
    lines = read_log(tmp_path / "logs")
    assert lines[0]["type"] == "session" and lines[-1]["type"] == "summary"
    turns = [l for l in lines if l["type"] == "turn"]
    assert [t["file"] for t in turns] == files
    for t in turns:
        assert t["source"] == "file" and t["transcript"].strip()
        assert t["stt"]["engine"] == "whisper"  # the default engine
        assert abs(sum(t["emotion"]["probs"].values()) - 1) < 1e-3
        assert t["emotion"]["label"] == "sad" and t["emotion"]["uncertain"] is False
        assert t["reply"]["text"] and t["reply"]["strategy"]
        assert set(t["latency_ms"]) >= {"stt", "ser", "reply", "total"}
        assert t["latency_ms"]["total"] >= t["latency_ms"]["reply"]
        assert 1.0 < t["audio_seconds"] < 6
    # one line per failure, naming the file
    errors = [l for l in err.getvalue().splitlines() if "cannot read" in l]
    assert len(errors) == 2 and "not-audio.wav" in errors[0] and "missing.flac" in errors[1]
    assert lines[-1]["failed_inputs"] == 2 and lines[-1]["turns"] == 3


def test_stt_and_emotion_run_at_the_same_time(tmp_path, datasets, monkeypatch):
    rec = FakeRecognizer(delay=0.4)
    monkeypatch.setattr(loop, "make_recognizer", lambda cfg: EmotionEngine(lambda: rec))

    class SlowStt(Transcriber):
        name = "sphinx"

        def transcribe(self, utterance):
            self.started = time.perf_counter()
            time.sleep(0.4)
            return Transcript(text="hello there", engine="sphinx", seconds=0.4)

    from assistant import stt

    monkeypatch.setattr(loop, "make_transcriber", lambda cfg: stt.FallbackTranscriber(SlowStt()))
    cfg = config(tmp_path, files=(str(ravdess_files(datasets, 1)[0]),))
    time.perf_counter()
    assert loop.run(cfg, PlainUI(out=io.StringIO(), err=io.StringIO())) == 0
    (turn,) = [l for l in read_log(tmp_path / "logs") if l["type"] == "turn"]
    # both took 400 ms; run one after the other the total would be >= 800 ms
    assert turn["latency_ms"]["total"] < 750, turn["latency_ms"]
    assert rec.calls[0][0].startswith("turn")  # ran on a worker thread


def test_failing_engine_falls_back_to_sphinx_and_logs_it(tmp_path, datasets, fake_model, monkeypatch):
    from assistant import stt

    class Broken(Transcriber):
        name = "google"

        def transcribe(self, utterance):
            raise SttError("google failed: network unreachable")

    monkeypatch.setattr(loop, "make_transcriber", lambda cfg: stt.FallbackTranscriber(Broken()))
    cfg = config(tmp_path, files=(str(ravdess_files(datasets, 1)[0]),))
    assert loop.run(cfg, PlainUI(out=io.StringIO(), err=io.StringIO())) == 0
    (turn,) = [l for l in read_log(tmp_path / "logs") if l["type"] == "turn"]
    assert turn["stt"]["error"] == "google failed: network unreachable"
    assert turn["stt"]["fallback"] == "sphinx" and turn["stt"]["engine"] == "sphinx"
    assert turn["transcript"].strip()


def test_low_confidence_marks_turn_uncertain(tmp_path, datasets, monkeypatch):
    rec = FakeRecognizer(label="angry", confidence=0.3)
    monkeypatch.setattr(loop, "make_recognizer", lambda cfg: EmotionEngine(lambda: rec))
    cfg = config(tmp_path, files=(str(ravdess_files(datasets, 1)[0]),))
    loop.run(cfg, PlainUI(out=io.StringIO(), err=io.StringIO()))
    (turn,) = [l for l in read_log(tmp_path / "logs") if l["type"] == "turn"]
    assert turn["uncertain"] is True and turn["emotion"]["uncertain"] is True
    assert turn["reply"]["strategy"] == "uncertain"
    assert "angry" not in turn["reply"]["text"].lower()


def test_missing_model_goes_on_without_emotion(tmp_path, datasets, monkeypatch):
    def broken():
        raise RuntimeError("no bundle at /nowhere")

    monkeypatch.setattr(loop, "make_recognizer", lambda cfg: EmotionEngine(broken))
    err = io.StringIO()
    cfg = config(tmp_path, files=tuple(str(p) for p in ravdess_files(datasets, 2)))
    assert loop.run(cfg, PlainUI(out=io.StringIO(), err=err)) == 0
    turns = [l for l in read_log(tmp_path / "logs") if l["type"] == "turn"]
    assert len(turns) == 2 and all(t["emotion"] is None and t["uncertain"] for t in turns)
    assert all(t["emotion_note"] == "model unavailable" for t in turns)
    assert err.getvalue().count("emotion model unavailable") == 1  # said once, not per turn


def test_silence_is_no_turn(tmp_path, fake_model):
    import soundfile as sf

    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(16000, dtype=np.float32) + 1e-6 * np.random.default_rng(0).standard_normal(16000), 16000)
    cfg = config(tmp_path, files=(str(quiet),))
    code = loop.run(cfg, PlainUI(out=io.StringIO(), err=io.StringIO()))
    lines = read_log(tmp_path / "logs")
    # either the loader rejects near-silence (one failed input) or the VAD finds no speech:
    # no STT, no reply, no turn, a no_speech event (issue 14 item 3)
    assert not [l for l in lines if l["type"] == "turn"]
    if code != loop.EXIT_INPUT_FAILED:
        assert [l["file"] for l in lines if l["type"] == "no_speech"] == [str(quiet)]


def test_text_mode_farewell_ends_and_max_turns(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\nI feel a bit lost\nbye\nnever read\n"))
    out = io.StringIO()
    cfg = config(tmp_path, text=True)
    assert loop.run(cfg, PlainUI(out=out, err=io.StringIO())) == 0
    turns = [l for l in read_log(tmp_path / "logs") if l["type"] == "turn"]
    assert [t["transcript"] for t in turns] == ["hello", "I feel a bit lost", "bye"]
    assert all(t["emotion"] is None and t["source"] == "text" for t in turns)
    assert turns[-1]["reply"]["strategy"] == "farewell"
    assert "Session summary: 3 turn(s)" in out.getvalue()

    monkeypatch.setattr("sys.stdin", io.StringIO("one\ntwo\nthree\n"))
    cfg = AssistantConfig(input=InputConfig(text=True, max_turns=2), speech=SpeechConfig(speak=False),
                          log=LogConfig(dir=str(tmp_path / "logs2")))
    loop.run(cfg, PlainUI(out=io.StringIO(), err=io.StringIO()))
    assert len([l for l in read_log(tmp_path / "logs2") if l["type"] == "turn"]) == 2


def test_tts_failure_prints_reply_and_goes_on(tmp_path, monkeypatch):
    from assistant import tts

    class BrokenSpeaker(tts.Speaker):
        name = "pyttsx3"

        def say(self, reply, on_start=lambda: None):
            raise tts.TtsError("speech synthesis failed: espeak-ng missing")

    monkeypatch.setattr(loop, "make_speaker", lambda cfg: BrokenSpeaker())
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\nhow are you?\n"))
    out, err = io.StringIO(), io.StringIO()
    cfg = AssistantConfig(input=InputConfig(text=True), log=LogConfig(dir=str(tmp_path / "logs")))
    assert loop.run(cfg, PlainUI(out=out, err=err)) == 0
    turns = [l for l in read_log(tmp_path / "logs") if l["type"] == "turn"]
    assert len(turns) == 2
    for t in turns:
        assert t["reply"]["text"] in out.getvalue()
        assert "espeak-ng missing" in t["speech"]["error"]
    assert "reply printed instead" in err.getvalue()


def test_interrupt_mid_speech_logs_completed_turns_and_summary(tmp_path, monkeypatch):
    from assistant import tts

    class InterruptedSpeaker(tts.Speaker):
        name = "pyttsx3"
        n = 0

        def say(self, reply, on_start=lambda: None):
            on_start()
            InterruptedSpeaker.n += 1
            if InterruptedSpeaker.n == 2:
                raise KeyboardInterrupt
            return tts.Spoken(audio_seconds=1.0, synth_seconds=0.01)

    monkeypatch.setattr(loop, "make_speaker", lambda cfg: InterruptedSpeaker())
    monkeypatch.setattr("sys.stdin", io.StringIO("one\ntwo\nthree\n"))
    cfg = AssistantConfig(input=InputConfig(text=True), log=LogConfig(dir=str(tmp_path / "logs")))
    out = io.StringIO()
    assert loop.run(cfg, PlainUI(out=out, err=io.StringIO())) == 130  # Ctrl-C: 130, as in ser-model
    lines = read_log(tmp_path / "logs")
    turns = [l for l in lines if l["type"] == "turn"]
    assert [t["transcript"] for t in turns] == ["one", "two"]
    assert turns[1]["speech"]["interrupted"] is True
    assert lines[-1]["type"] == "summary" and lines[-1]["turns"] == 2
    assert "Session summary" in out.getvalue()


def test_unwritable_log_dir_session_goes_on(tmp_path, monkeypatch):
    import os

    if os.geteuid() == 0:
        # root ignores directory permissions: use a path under a regular file instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        log_dir = blocker / "logs"
    else:
        log_dir = tmp_path / "ro"
        log_dir.mkdir(mode=0o500)
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\nbye\n"))
    out, err = io.StringIO(), io.StringIO()
    cfg = AssistantConfig(input=InputConfig(text=True), speech=SpeechConfig(speak=False),
                          log=LogConfig(dir=str(log_dir)))
    assert loop.run(cfg, PlainUI(out=out, err=err)) == 0
    assert err.getvalue().count("NOT being logged") == 1
    assert "Session summary: 2 turn(s)" in out.getvalue()
    assert "log: NOT kept" in out.getvalue()


def test_long_file_is_replayed_in_pieces_with_an_emotion_per_window(tmp_path, fake_model, monkeypatch):
    """A 30 s file: consecutive pieces of at most phrase_time_limit, cut at quiet points,
    each one turn with 3 s emotion windows; the turns cover the whole file."""
    import soundfile as sf

    from assistant import stt

    class QuickStt(Transcriber):
        name = "sphinx"

        def transcribe(self, utterance):
            return Transcript(text="a tone", engine="sphinx", seconds=0.0)

    monkeypatch.setattr(loop, "make_transcriber", lambda cfg: stt.FallbackTranscriber(QuickStt()))
    # a pure tone is no speech to the VAD; this test is about cutting the pieces, so let it through
    monkeypatch.setattr(loop.Session, "_has_speech", lambda self, utt: True)

    rate = 22050  # not 16 kHz: the pieces are resampled
    t = np.arange(int(4.0 * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    y = np.concatenate([np.concatenate([tone, np.zeros(int(1.0 * rate), np.float32)])] * 6)
    path = tmp_path / "long.wav"
    sf.write(str(path), y, rate)
    cfg = config(tmp_path, files=(str(path),), phrase_time_limit=12.0)
    assert loop.run(cfg, PlainUI(out=io.StringIO(), err=io.StringIO())) == 0
    turns = [l for l in read_log(tmp_path / "logs") if l["type"] == "turn"]
    assert len(turns) >= 3
    offsets = [t["file_offset_s"] for t in turns]
    assert offsets[0] == 0.0 and offsets == sorted(offsets)
    assert sum(t["audio_seconds"] for t in turns) == pytest.approx(len(y) / rate, abs=0.05)
    for t in turns:
        assert t["file"] == str(path) and t["audio_seconds"] <= 12.0 + 1e-3
        assert set(t) >= {"type", "session", "turn", "started_at", "ended_at", "source", "file",
                          "audio_seconds", "transcript", "stt", "emotion", "reply", "latency_ms"}
        if t["audio_seconds"] > 6:
            assert len(t["windows"]) >= 2 and t["emotion"]["label"] == "sad"
    # cut in the silences, not mid-tone: every piece but the last ends on a 1 s gap
    for _a, b in itertools.pairwise(offsets):
        assert (b % 5.0) > 4.0 or (b % 5.0) < 0.01, offsets


def test_session_keeps_no_audio_after_the_turn(tmp_path, datasets, fake_model):
    files = [str(p) for p in ravdess_files(datasets, 2)]
    session = loop.Session(config(tmp_path, files=tuple(files)), PlainUI(out=io.StringIO(), err=io.StringIO()))
    assert session.run() == 0
    assert len(session.turns) == 2 and all(t.utterance.samples.size == 0 for t in session.turns)
    assert session.summary()["emotions"] == {"sad": 2}


def test_explicit_bad_model_is_a_setup_error(tmp_path, datasets):
    err = io.StringIO()
    missing = tmp_path / "no-such-bundle"
    cfg = AssistantConfig(input=InputConfig(files=(str(ravdess_files(datasets, 1)[0]),)),
                          speech=SpeechConfig(speak=False), log=LogConfig(dir=str(tmp_path / "logs")),
                          emotion=EmotionConfig(model=str(missing)))
    assert loop.run(cfg, PlainUI(out=io.StringIO(), err=err)) == loop.EXIT_SETUP
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "not a model bundle" in lines[0]
    assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").glob("*.jsonl"))


def test_the_loop_asks_capabilities_with_defaults_not_classes():
    """What the loop asks of a source, speaker, transcriber and stream has a default on the
    interface, so a new kind of source or engine needs no change in the loop."""
    from assistant import sources, stt, tts
    from assistant.types import Transcript

    text = sources.TextSource(stream=io.StringIO(""))
    assert not text.live and not text.can_watch_for_speech and not text.in_progress
    assert text.setup_warning() is None and not text.barge_in_by_default
    assert text.reconnect(timeout=0.0) is False
    with pytest.raises(NotImplementedError):
        text.watch_for_speech(None, lambda t: None)
    assert not sources.FileSource(()).in_progress
    assert sources.MicrophoneSource.live and sources.MicrophoneSource.can_watch_for_speech
    assert not tts.SilentSpeaker().audible and tts.Speaker.audible

    class Stream(stt.StreamingTranscription):
        def feed(self, pcm16):
            pass

        def finish(self):
            return Transcript("hi", "fake")

    s = Stream()
    assert s.speculate() is None and s.voiced_until == 0
    assert stt.NoTranscriber().finish_stream(s, None).text == "hi"


class EncodingRecognizer(FakeRecognizer):
    """A fake model that can be run in two parts, as ser_model's is (encode, predict_encoded)."""

    def __init__(self):
        super().__init__(label="happy")
        self.encoded: list[tuple[str, int]] = []
        self.finished: list[int] = []

    def encode(self, samples, sample_rate):
        assert sample_rate == 16000
        self.encoded.append((threading.current_thread().name, len(samples)))
        return ("encoded", len(samples))

    def predict_encoded(self, encoded, profile=None, *, learn=False):
        self.finished.append(encoded[1])
        probs = {k: 0.1 for k in ("happy", "sad", "angry", "fearful", "disgust", "surprised")}
        return EmotionResult("neutral", 0.4, {**probs, "neutral": 0.4}, self.model_version, 0.0)


class LiveClips:
    """A live source without a device, feeding the stream as the microphone does: speech,
    a pause (the stream's ``speculate``), then silence, or more speech when ``resume``."""

    kind, live, can_watch_for_speech, on_listening, in_progress = "mic", True, False, None, False
    barge_in_by_default = False

    def __init__(self, clips):
        self.clips = list(clips)

    def next_utterance(self, sink=None):
        from assistant.stt import to_pcm16

        if not self.clips:
            return None
        speech, resume = self.clips.pop(0)
        pcm = to_pcm16(speech)
        sink.feed(pcm)
        sink.voiced_until = len(speech)
        words = sink.speculate()
        if resume:
            more = to_pcm16(speech[: len(speech) // 2])
            sink.feed(more)
            sink.voiced_until += len(more) // 2
            pcm += more
        deadline = time.monotonic() + 5
        while words() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        silence = to_pcm16(np.zeros(4800, np.float32))
        sink.feed(silence)
        pcm += silence
        y = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        now = time.time()
        return Utterance(samples=y, sample_rate=16000, started_at=now - len(y) / 16000, ended_at=now,
                         source="mic", speech_ended_at=now - 0.3, voiced_seconds=1.0)

    def open(self):
        pass

    def calibrate(self, status):
        pass

    def setup_warning(self):
        return None

    def pause(self):
        pass

    def resume(self):
        pass

    def close(self):
        pass


def test_emotion_is_encoded_at_the_pause(tmp_path, datasets, monkeypatch):
    """At a pause the model's costly part starts on the audio so far, beside the speculative
    decode; when no speech follows, the turn only finishes it. Speech after the pause: the
    utterance is judged whole."""
    from assistant import stt
    from assistant.stt import StreamingTranscription
    from ser_model.audio import load_audio

    class Stream(StreamingTranscription):
        def feed(self, pcm16):
            pass

        def speculate(self):
            return lambda: Transcript(text="hello there.", engine="fake", end_prob=0.9)

        def finish(self):
            return Transcript(text="hello there.", engine="fake")

    class StreamStt(Transcriber):
        name = "fake"

        def transcribe(self, utterance):
            return Transcript(text="hello there.", engine="fake")

        def start_stream(self):
            return Stream()

    rec = EncodingRecognizer()
    monkeypatch.setattr(loop, "make_recognizer", lambda cfg: EmotionEngine(lambda: rec))
    monkeypatch.setattr(loop, "make_transcriber", lambda cfg: stt.FallbackTranscriber(StreamStt()))
    y = load_audio(ravdess_files(datasets, 1)[0])
    monkeypatch.setattr(loop, "make_source", lambda cfg, **kw: LiveClips([(y, False), (y, True)]))
    assert loop.run(config(tmp_path), PlainUI(out=io.StringIO(), err=io.StringIO())) == 0
    first, second = [l for l in read_log(tmp_path / "logs") if l["type"] == "turn"]
    assert [n for _, n in rec.encoded] == [len(y), len(y)]  # at each pause, the audio so far
    assert all(name.startswith("ser-early") for name, _ in rec.encoded)
    assert rec.finished == [len(y)]  # the first turn finished its encoding ...
    assert first["emotion"]["label"] == "neutral"
    assert len(rec.calls) == 1 and rec.calls[0][2] == len(y) + len(y) // 2 + 4800  # ... the second was judged whole
    assert second["emotion"]["label"] == "happy"


def test_emotion_model_still_loading_is_waited_for_a_bounded_time(tmp_path, datasets, monkeypatch):
    """A model load that never finishes (a stalled import, a hung disk) costs each turn
    ``LOAD_TIMEOUT_S`` and its emotion, said once; the session does not hang."""
    release = threading.Event()

    def stuck():
        release.wait(60)
        raise RuntimeError("released")

    monkeypatch.setattr(EmotionEngine, "LOAD_TIMEOUT_S", 0.5)
    monkeypatch.setattr(loop.Session, "EXIT_WAIT_S", 0.5)
    monkeypatch.setattr(loop, "make_recognizer", lambda cfg: EmotionEngine(stuck))
    err = io.StringIO()
    cfg = config(tmp_path, files=tuple(str(p) for p in ravdess_files(datasets, 2)))
    try:
        t0 = time.monotonic()
        assert loop.run(cfg, PlainUI(out=io.StringIO(), err=err)) == 0
        took = time.monotonic() - t0
    finally:
        release.set()
    turns = [l for l in read_log(tmp_path / "logs") if l["type"] == "turn"]
    assert len(turns) == 2 and all(t["emotion"] is None and t["transcript"] for t in turns)
    assert err.getvalue().count("did not load in 0 s") == 1, err.getvalue()
    assert took < 25


def test_whisper_still_loading_is_a_one_line_stt_error_not_a_hang(monkeypatch):
    from assistant.stt import WhisperTranscriber
    from ser_model import whisper_model

    release = threading.Event()

    def stuck(*args, **kwargs):
        release.wait(60)
        raise whisper_model.WhisperModelError("released")

    monkeypatch.setattr(whisper_model, "shared_whisper", stuck)
    monkeypatch.setattr(WhisperTranscriber, "LOAD_TIMEOUT_S", 0.3)
    stt = WhisperTranscriber()
    utt = Utterance(samples=np.full(16000, 0.1, dtype=np.float32), sample_rate=16000)
    try:
        t0 = time.monotonic()
        with pytest.raises(SttError, match="did not load in 0 s"):
            stt.transcribe(utt)
        assert time.monotonic() - t0 < 5
    finally:
        release.set()
