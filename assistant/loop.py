"""The conversation loop: capture, (STT ∥ emotion), reply, speak, log, show.

The loop sees only the interfaces of sources, transcribers, the emotion engine, speakers,
the responder, the session log and the UI. Hardware and engines come from the factories
``make_source``, ``make_transcriber``, ``make_recognizer`` and ``make_speaker`` (module
globals here, so a test patches one of them to swap in a fake).

Timing: ``latency_ms.total`` runs from the end of the utterance (end-of-utterance detected
for the microphone, file loaded for ``--input``, line read for ``--text``) to the moment the
spoken reply starts (or the reply is printed, with ``--no-speak``).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import statistics
import time
import wave
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import assistant
from assistant.audio_io import DeviceError, NoInputDeviceError
from assistant.config import DEFAULT_MIN_CONFIDENCE, AssistantConfig
from assistant.emotion import LONG_UTTERANCE_S, EmotionEngine, check_bundle, combine, make_recognizer
from assistant.responder import Responder
from assistant.session_log import SessionLog, default_log_dir, iso, new_session_id
from assistant.sources import MicrophoneLost, UtteranceError, UtteranceSource, make_source
from assistant.stt import StreamingTranscription, SttError, Transcriber, make_transcriber
from assistant.tts import SilentSpeaker, Speaker, TtsError, make_speaker
from assistant.types import EmotionWindow, Transcript, Turn, Utterance
from ser_model.errors import one_line
from ser_model.result import EmotionResult

EXIT_OK = 0
EXIT_SETUP = 1
EXIT_INPUT_FAILED = 2
EXIT_NO_INPUT_DEVICE = 3
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as in ser-model
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM)

MIC_WAIT_S = 60.0
"""How long a session waits for a disconnected microphone before it ends (exit status 3)."""

_NO_SAMPLES = np.zeros(0, dtype=np.float32)
_NO_SAMPLES.flags.writeable = False

STREAM_RATE = 16000
"""Rate of the audio a speech-to-text stream is fed (16-bit PCM)."""

NO_MIC_MESSAGE = ("no input device (microphone) was found; replay audio files with "
                  "'assistant --input FILE...' or type with 'assistant --text' instead")


@dataclasses.dataclass(frozen=True)
class Analysis:
    """What speech-to-text and the emotion model made of one utterance."""

    transcript: Transcript
    emotion: EmotionResult | None
    windows: tuple[EmotionWindow, ...] = ()
    """Emotion per window (long utterances only)."""
    stt_ms: float = 0.0
    ser_ms: float = 0.0
    note: str | None = None
    """Why there is no emotion (``text``, ``no speech detected``, an error)."""


class _EncodeAtPause(StreamingTranscription):
    """The speech-to-text stream of one live utterance that, at each pause, also starts the
    emotion model's costly part (``EmotionEngine.encode``: conditioning, Whisper encoder,
    prosody) on the audio so far, beside the stream's own speculative decode. When no speech
    comes after the pause, the turn's emotion is that encoding finished with the profile as
    it is at the end: the turn waits for the model's last step only."""

    def __init__(self, inner: StreamingTranscription, start: Callable[[bytes], Future | None]) -> None:
        self.inner = inner
        self._start = start
        self._pcm = bytearray()
        self._encoded: tuple[int, Future] | None = None

    @property
    def voiced_until(self) -> int:  # type: ignore[override]
        return self.inner.voiced_until

    @voiced_until.setter
    def voiced_until(self, samples: int) -> None:
        self.inner.voiced_until = samples

    def feed(self, pcm16: bytes) -> None:
        self.inner.feed(pcm16)
        self._pcm += pcm16

    def speculate(self):
        words = self.inner.speculate()
        if self._encoded is not None:
            self._encoded[1].cancel()  # an older pause's, not started yet: not needed
            self._encoded = None
        n = len(self._pcm) // 2
        if n <= LONG_UTTERANCE_S * STREAM_RATE:  # a long one is judged window by window
            future = self._start(bytes(self._pcm))
            self._encoded = (n, future) if future is not None else None
        return words

    def encoded_for(self, utt: Utterance) -> Future | None:
        """The encoding begun at the utterance's last pause, when it holds all of its speech
        (no voiced frame came after it) and the capture ran at the stream's rate (the stream's
        audio is then the utterance's, sample for sample); else None."""
        if (self._encoded is None or utt.sample_rate != STREAM_RATE
                or self._encoded[0] < self.inner.voiced_until or utt.seconds > LONG_UTTERANCE_S):
            return None
        return self._encoded[1]

    def finish(self) -> Transcript:
        return self.inner.finish()

    def cancel(self) -> None:
        if self._encoded is not None:
            self._encoded[1].cancel()
        self.inner.cancel()


def _early_result(future: Future | None) -> Any:
    """The encoding begun at the pause (None: none, it found no speech, or it failed: the
    utterance is then encoded whole, as without one)."""
    if future is None or future.cancelled():
        return None
    try:
        return future.result()
    except Exception:
        return None


class _ShowOnStart:
    """The speaker's ``on_start``: the moment the reply starts (``latency_ms.total`` ends
    there) the turn is completed with its total and shown; :meth:`final` is the turn to log."""

    def __init__(self, draft: Turn, ui, *, speaking: bool) -> None:
        self.draft = draft
        """The turn without ``latency_ms.total``."""
        self.ui = ui
        self.speaking = speaking
        self.turn: Turn | None = None
        """The turn as shown; None until the reply started."""

    def _complete(self) -> Turn:
        total = (time.time() - self.draft.utterance.ended_at) * 1000
        return dataclasses.replace(self.draft, latency_ms={**self.draft.latency_ms, "total": total})

    def __call__(self) -> None:
        self.turn = self._complete()
        self.ui.turn(self.turn)
        if self.speaking:
            self.ui.state("speaking")

    def final(self) -> Turn:
        """The turn as shown, or (the reply never started) completed now."""
        return self.turn if self.turn is not None else self._complete()


class Shutdown(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: finish cleanly with a summary."""


def install_signal_handlers() -> None:
    """SIGTERM raises :class:`Shutdown` in the main thread (SIGINT raises KeyboardInterrupt)."""

    def on_term(signum, frame):
        raise Shutdown()

    signal.signal(signal.SIGTERM, on_term)


class Session:
    """One conversation."""

    def __init__(self, config: AssistantConfig, ui, *, session_id: str | None = None) -> None:
        self.config = config
        self.ui = ui
        self.session_id = session_id or new_session_id()
        self.turns: list[Turn] = []
        self.failed_inputs = 0
        self.log: SessionLog | None = None
        self.recognizer: EmotionEngine | None = None
        self.source: UtteranceSource | None = None
        self.speaker: Speaker = SilentSpeaker()
        self.transcriber: Transcriber | None = None
        self.responder = Responder(min_confidence=self._threshold())
        self._pool: ThreadPoolExecutor | None = None
        self._early: ThreadPoolExecutor | None = None
        """One thread for the emotion encodings begun at pauses (:class:`_EncodeAtPause`)."""
        self._last_ser_error: str | None = None
        self._no_speech_events = 0
        """Utterances without speech (logged as ``no_speech`` lines; a log with them is kept)."""
        self.barge_in = False

    def _threshold(self) -> float:
        """Below this confidence an emotion is uncertain: the user's --min-confidence, else
        the model's recommendation (once it has loaded), else DEFAULT_MIN_CONFIDENCE."""
        if self.config.emotion.min_confidence is not None:
            return self.config.emotion.min_confidence
        rec = self.recognizer
        recommended = rec.min_confidence if rec is not None and rec.ready else None
        return recommended if recommended is not None else DEFAULT_MIN_CONFIDENCE

    # -- set-up ------------------------------------------------------------------------
    def _setup(self) -> int | None:
        cfg = self.config
        ui = self.ui
        ui.state("starting")
        if cfg.emotion.model is not None:  # a model named but unusable is an error in every mode
            problem = check_bundle(cfg.emotion.model)
            if problem:
                ui.notice(problem)
                return EXIT_SETUP
        self.source = make_source(cfg, on_level=ui.level, prompt=ui.prompt)
        try:
            self.source.open()
        except NoInputDeviceError:
            ui.notice(NO_MIC_MESSAGE)
            return EXIT_NO_INPUT_DEVICE
        except DeviceError as err:
            ui.notice(str(err))
            return EXIT_SETUP
        warning = self.source.setup_warning()
        if warning:
            ui.notice(warning)
        if cfg.source_kind != "text":
            # TensorFlow's import is slow: load the model while we calibrate and set up.
            self.recognizer = make_recognizer(cfg)
        try:
            self.transcriber = make_transcriber(cfg) if cfg.source_kind != "text" else None
        except SttError as err:
            ui.notice(str(err))
            return EXIT_SETUP
        try:
            self.speaker = make_speaker(cfg)
            self.speaker.warm_up()
        except TtsError as err:
            ui.notice(f"{err}; replies will be printed only")
            self.speaker = SilentSpeaker()
        self.barge_in = False
        if self.source.can_watch_for_speech:
            # on by flag; else only when the capture is echo-cancelled (it would hear the reply)
            self.barge_in = (cfg.input.barge_in if cfg.input.barge_in is not None
                             else self.source.barge_in_by_default)
        self.source.calibrate(ui.state)
        self._wait_for_models()
        log_dir = Path(cfg.log.dir) if cfg.log.dir else default_log_dir()
        self.log = SessionLog(log_dir, self.session_id, on_error=ui.notice)
        self.log.write_session({
            "started_at": iso(time.time()),
            "version": assistant.__version__,
            "source": cfg.source_kind,
            "stt_engine": cfg.stt.engine,
            "emotion_model": cfg.emotion.model or "default",
            "min_confidence": cfg.emotion.min_confidence,  # None: the model's recommendation
            "adapt": cfg.emotion.adapt and cfg.source_kind != "text",
            "speak": cfg.speech.speak and self.speaker.audible,
            "files": list(cfg.input.files),
            "pid": os.getpid(),
            "barge_in": self.barge_in,
        })
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="turn")
        self._early = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ser-early")
        return None

    def _encode_early(self, pcm16: bytes) -> Future | None:
        """Start the emotion model's encoding of the 16 kHz PCM heard so far (None when the
        model is not loaded yet or cannot be run in two parts)."""
        rec = self.recognizer
        if rec is None or self._early is None or not rec.can_encode:
            return None
        samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        return self._early.submit(rec.encode, samples, STREAM_RATE)

    def _stream(self) -> StreamingTranscription | None:
        """The speech-to-text stream for the next live utterance (None: the engine has none),
        encoding the emotion at pauses too where it can."""
        sink = self.transcriber.start_stream() if self.transcriber is not None else None
        if sink is None or self.recognizer is None:
            return sink
        return _EncodeAtPause(sink, self._encode_early)

    MODEL_WAIT_S = 60.0
    EXIT_WAIT_S = 30.0
    """At exit, how long a model still loading is given to finish (seconds)."""

    def _wait_for_models(self) -> None:
        """Listen only once the models have loaded (they load on threads while the microphone
        settles). Loading stalls other Python threads in bursts (measured: up to ~50 ms on an
        idle machine; longer on a busy one or with a cold disk cache), close to the capture's
        64 ms of buffering, and speech said then would be the first turn's. A model that
        fails to load is reported at its first turn, as before; one still loading after
        ``MODEL_WAIT_S`` is waited for there."""
        if self.source is None or not self.source.live:
            return
        waiting = [m for m in (self.transcriber, self.recognizer) if m is not None]
        if not waiting:
            return
        self.ui.state("loading model")
        self.source.pause()  # next_utterance resumes: no stale audio from the wait
        deadline = time.monotonic() + self.MODEL_WAIT_S
        for model in waiting:
            model.wait(max(0.0, deadline - time.monotonic()))

    # -- one turn ----------------------------------------------------------------------
    def _analyse(self, utt: Utterance, sink: StreamingTranscription | None) -> Analysis:
        """STT and emotion at the same time, on two threads."""
        assert self._pool is not None and self.transcriber is not None
        transcriber = self.transcriber

        def stt():
            t0 = time.perf_counter()
            if sink is not None:
                tr = transcriber.finish_stream(sink, utt)
            else:
                tr = transcriber.transcribe(utt)
            return tr, (time.perf_counter() - t0) * 1000

        windows: list = []
        early = sink.encoded_for(utt) if isinstance(sink, _EncodeAtPause) else None

        def ser():
            rec = self.recognizer
            if rec is None or not rec.wait(rec.LOAD_TIMEOUT_S):
                if rec is not None and not rec.ready:
                    return None, 0.0, f"the emotion model did not load in {rec.LOAD_TIMEOUT_S:.0f} s"
                return None, 0.0, (rec.error if rec else None) or "emotion model unavailable"
            t0 = time.perf_counter()
            try:
                if utt.seconds > LONG_UTTERANCE_S:  # emotion over time, not the first seconds only
                    windows.extend(rec.predict_windows(utt.samples, utt.sample_rate))
                    result = combine(windows)
                else:
                    encoded = _early_result(early)
                    result = rec.predict(utt.samples, utt.sample_rate, encoded=encoded)
            except Exception as err:  # SerError or a model failure: this turn has no emotion
                windows.clear()
                return (
                    None,
                    (time.perf_counter() - t0) * 1000,
                    f"emotion failed: {one_line(err)}",
                )
            return result, (time.perf_counter() - t0) * 1000, None

        f_ser = self._pool.submit(ser)
        f_stt = self._pool.submit(stt)
        transcript, stt_ms = f_stt.result()
        emotion, ser_ms, ser_error = f_ser.result()
        for notice in self.recognizer.take_notices() if self.recognizer is not None else ():
            self.ui.notice(notice)
        if ser_error and ser_error != self._last_ser_error:
            self.ui.notice(ser_error + " - replies will follow your words only")
            self._last_ser_error = ser_error
        note = None
        if emotion is None:
            note = ("model unavailable" if ser_error and "unavailable" in ser_error
                    else ser_error or "no speech detected")
        return Analysis(transcript=transcript, emotion=emotion, windows=tuple(windows),
                        stt_ms=stt_ms, ser_ms=ser_ms, note=note)

    def _turn(self, utt: Utterance, sink) -> Turn:
        ui = self.ui
        ui.state("thinking")
        if utt.source == "text":
            heard = Analysis(transcript=Transcript(text=utt.text or "", engine="text"), emotion=None,
                             note="text")
        else:
            heard = self._analyse(utt, sink)
        transcript, emotion, windows, note = heard.transcript, heard.emotion, heard.windows, heard.note
        threshold = self._threshold()
        self.responder.min_confidence = threshold
        uncertain = emotion is None or float(emotion.confidence) < threshold
        windows = tuple(dataclasses.replace(
            w, uncertain=w.emotion is None or float(w.emotion.confidence) < threshold) for w in windows)
        t0 = time.perf_counter()
        reply = self.responder.reply(transcript.text, emotion.label if emotion else None,
                                     float(emotion.confidence) if emotion else None)
        reply_ms = (time.perf_counter() - t0) * 1000
        number = len(self.turns) + 1
        latency = {"stt": heard.stt_ms, "ser": heard.ser_ms, "reply": reply_ms}
        voice_clips = self.recognizer.profile_clips if self.recognizer is not None and emotion else None
        if utt.speech_ended_at is not None:  # the microphone: how long the endpointer waited
            latency = {"endpoint": (utt.ended_at - utt.speech_ended_at) * 1000, **latency}

        showing = _ShowOnStart(
            Turn(session=self.session_id, turn=number, utterance=utt, transcript=transcript,
                 emotion=emotion, uncertain=uncertain, reply=reply, latency_ms=latency,
                 emotion_note=note, windows=windows, voice_clips=voice_clips),
            ui, speaking=self.speaker.audible)

        extra: dict[str, Any] = {}
        if self.config.log.save_audio and utt.source != "text" and self.log and self.log.active:
            extra["audio_file"] = self._save_audio(utt, number)
        if utt.endpoint is not None:
            extra["endpoint"] = utt.endpoint.record()
        speech: dict[str, Any] = {"engine": self.speaker.name}
        extra["speech"] = speech
        barge = self._start_barge_in()
        try:
            if barge:
                spoken = self.speaker.say(reply, on_start=showing, stop=barge[0])
            else:
                spoken = self.speaker.say(reply, on_start=showing)
            speech["audio_seconds"] = round(spoken.audio_seconds, 3)
            speech["synth_ms"] = round(spoken.synth_seconds * 1000, 1)
            if spoken.interrupted and barge and "onset" in barge[2]:
                onset = barge[2]["onset"]
                speech["barge_in"] = {"played_s": round(spoken.played_seconds or 0.0, 3),
                                      "stop_ms": round(((spoken.stopped_at or onset) - onset) * 1000, 1)}
        except TtsError as err:
            speech["error"] = str(err)
            if showing.turn is None:
                showing()
            ui.notice(f"{err} (reply printed instead)")
        except KeyboardInterrupt:
            speech["interrupted"] = True
            self._stop_barge_in(barge)
            self._finish_turn(showing.final(), extra)
            raise
        self._stop_barge_in(barge)
        return self._finish_turn(showing.final(), extra)

    def _start_barge_in(self):
        """While the reply plays, listen (barge-in, when on): (stop event for the speaker,
        the listening thread, what it heard) or None."""
        if (not self.barge_in or self.source is None or not self.source.can_watch_for_speech
                or not self.speaker.audible):
            return None
        import threading

        interrupt, done, heard = threading.Event(), threading.Event(), {}

        def on_speech(onset: float) -> None:
            heard["onset"] = onset
            interrupt.set()

        watcher = threading.Thread(target=self.source.watch_for_speech, args=(done, on_speech),
                                   name="barge-in", daemon=True)
        watcher.start()
        return interrupt, watcher, heard, done

    def _stop_barge_in(self, barge) -> None:
        if barge is None:
            return
        barge[3].set()
        barge[1].join(timeout=2)
        if "onset" not in barge[2] and self.source is not None:
            self.source.pause()

    def _finish_turn(self, turn: Turn, extra: dict) -> Turn:
        if self.log is not None:
            self.log.write_turn(turn, extra=extra)
        # Keep what the summary needs, not the audio: an hour at the microphone would
        # otherwise hold every word's samples (and audio lives only for its turn unless
        # --save-audio).
        self.turns.append(dataclasses.replace(
            turn, utterance=dataclasses.replace(turn.utterance, samples=_NO_SAMPLES), windows=()))
        return turn

    def _save_audio(self, utt: Utterance, number: int) -> str | None:
        assert self.log is not None
        path = self.log.save_audio_path(number)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh, wave.open(fh, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(utt.sample_rate)
                w.writeframes((np.clip(utt.samples, -1, 1) * 32767).astype("<i2").tobytes())
        except OSError as err:
            self.ui.notice(f"cannot save audio to {path}: {err.strerror or err}")
            return None
        return str(path)

    # -- the session -------------------------------------------------------------------
    def run(self) -> int:
        """Run until the input ends, max turns, "goodbye", Ctrl-C or SIGTERM. Returns the exit status."""
        ui = self.ui
        code = EXIT_OK
        ui.start()
        sink = None
        try:
            setup = self._setup()
            if setup is not None:
                return setup
            assert self.source is not None
            max_turns = self.config.input.max_turns
            while max_turns is None or len(self.turns) < max_turns:
                if self.source.kind == "text":
                    ui.state("listening", "type a line (\"bye\" to end)")
                elif self.source.live:  # shown once the microphone delivers frames
                    self.source.on_listening = lambda: ui.state("listening")
                sink = self._stream() if self.source.live else None
                try:
                    utt = self.source.next_utterance(sink)
                except UtteranceError as err:
                    self.failed_inputs += 1
                    ui.notice(f"cannot read {err}")
                    continue
                except MicrophoneLost as err:
                    if sink is not None:
                        sink.cancel()
                        sink = None
                    if not self._reconnect(str(err)):
                        code = EXIT_NO_INPUT_DEVICE
                        break
                    continue
                if utt is None:
                    if sink is not None:
                        sink.cancel()
                    break
                if utt.source != "text" and not self._has_speech(utt):
                    if sink is not None:
                        sink.cancel()
                    sink = None
                    self._no_speech(utt)
                    continue
                turn = self._turn(utt, sink)
                sink = None
                if turn.reply.strategy == "farewell" and not self.source.in_progress:
                    break  # (a "bye" inside a long recording does not end its replay)
        except KeyboardInterrupt as err:
            if sink is not None:
                sink.cancel()
            ui.notice("interrupted - ending the session")
            code = EXIT_TERMINATED if isinstance(err, Shutdown) else EXIT_INTERRUPTED
        finally:
            self._close(code)
        if self.failed_inputs and code == EXIT_OK:
            code = EXIT_INPUT_FAILED
        return code

    def _has_speech(self, utt: Utterance) -> bool:
        """Whether the utterance holds speech: the microphone's endpointer measured its voiced
        time; a file is asked of the same VAD. No speech: no STT, no reply, no turn."""
        from assistant import vad

        if utt.voiced_seconds is not None:
            return utt.voiced_seconds >= vad.EndpointSettings().min_speech_s
        try:
            return vad.has_speech(utt.samples, utt.sample_rate, vad=vad.shared_vad(self.config.input.vad))
        except Exception:  # a VAD that cannot run must not silence the assistant
            return True

    def _no_speech(self, utt: Utterance) -> None:
        """Log an utterance without speech as a ``no_speech`` event (not a turn)."""
        where = f" in {utt.file}" if utt.file else ""
        if utt.offset:
            where += f" at {utt.offset:.1f} s"
        if utt.source == "file":
            self.ui.notice(f"no speech{where} - no turn")
        self._no_speech_events += 1
        if self.log is not None:
            record: dict[str, Any] = {"type": "no_speech", "session": self.session_id, "at": iso(utt.ended_at),
                                      "source": utt.source, "file": utt.file,
                                      "audio_seconds": round(utt.seconds, 3)}
            if utt.offset is not None:
                record["file_offset_s"] = round(float(utt.offset), 3)
            if utt.voiced_seconds is not None:
                record["voiced_seconds"] = round(utt.voiced_seconds, 3)
            self.log.write(record)

    def _reconnect(self, why: str) -> bool:
        """The microphone is gone: say so, wait for it (``MIC_WAIT_S``), say what happened."""
        ui = self.ui
        source = self.source
        ui.state("waiting for the microphone")
        ui.notice(f"microphone disconnected: {why} - waiting up to {MIC_WAIT_S:.0f} s for it to "
                  f"come back (Ctrl-C ends the session)")
        if source is not None and source.reconnect(timeout=MIC_WAIT_S):
            ui.notice("microphone is back - listening again")
            return True
        ui.notice(f"no microphone after {MIC_WAIT_S:.0f} s - ending the session")
        return False

    def summary(self) -> dict[str, Any]:
        """Turns, emotion distribution, median latency and where the log is."""
        emotions = Counter(t.emotion.label if t.emotion else "none" for t in self.turns)
        totals = [t.latency_ms["total"] for t in self.turns]
        return {
            "turns": len(self.turns),
            "emotions": dict(emotions),
            "uncertain_turns": sum(1 for t in self.turns if t.uncertain),
            "min_confidence": self._threshold(),
            "median_latency_ms": round(statistics.median(totals), 1) if totals else None,
            "median_stage_ms": {k: round(statistics.median(t.latency_ms[k] for t in self.turns), 1)
                                for k in ("stt", "ser", "reply")} if self.turns else {},
            "failed_inputs": self.failed_inputs,
            "log": str(self.log.path) if self.log is not None and self.log.active else None,
            "log_error": self.log.failed if self.log is not None else None,
        }

    def _close(self, code: int) -> None:
        ui = self.ui
        try:
            if self.source is not None:
                self.source.close()
            for pool in (self._pool, self._early):
                if pool is not None:
                    pool.shutdown(wait=False, cancel_futures=True)
            self.speaker.close()
            if self.transcriber is not None:
                self.transcriber.close()
            if self.log is not None:
                if not self.turns and not self._no_speech_events:
                    self.log.discard()  # nothing heard at all: no session log
                summary = self.summary()
                self.log.write_summary({**summary, "ended_at": iso(time.time()),
                                        "model_version": self.recognizer.model_version if self.recognizer else None})
                self.log.close()
                ui.stop()
                ui.summary(summary)
            else:
                ui.stop()
        finally:
            ui.stop()
            if self.recognizer is not None and not self.recognizer.ready:
                # Let a half-finished TensorFlow import end before the interpreter does.
                self.recognizer.wait(timeout=self.EXIT_WAIT_S)


def run(config: AssistantConfig, ui, *, session_id: str | None = None) -> int:
    """Run one session with ``ui``; returns the exit status."""
    return Session(config, ui, session_id=session_id).run()
