"""Where utterances come from: microphone, audio files, or typed lines.

All three implement :class:`UtteranceSource`; :func:`make_source` picks one from the config.
The loop calls :meth:`UtteranceSource.next_utterance` once per turn, and asks a source what it
can do through the capabilities on :class:`UtteranceSource` (``live``, ``in_progress``,
``barge_in_by_default``, ``watch_for_speech``, ``reconnect``), never its class.
:class:`MicrophoneSource` resumes its stream when it starts listening and pauses it as soon as
the utterance ends (and again after a barge-in watch), so the microphone never records the
assistant's own voice.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TextIO

import numpy as np

from assistant.config import AssistantConfig
from assistant.errors import AssistantError
from assistant.types import EndpointTrace, Utterance


class UtteranceError(AssistantError):
    """One utterance could not be read (e.g. an unreadable file); the session goes on."""

    def __init__(self, message: str, *, file: str | None = None) -> None:
        super().__init__(message)
        self.file = file


class MicrophoneLost(AssistantError):
    """The microphone went away while listening (unplugged, or the audio server moved the
    capture to another source); ``str(err)`` is one line. See ``MicrophoneSource.reconnect``."""


class UtteranceSource(ABC):
    """A sequence of utterances."""

    kind: str = "?"
    live: bool = False
    """True when utterances are captured as they are spoken (the microphone): the loop then
    streams them to the transcriber and shows "listening" through :attr:`on_listening`."""
    can_watch_for_speech: bool = False
    """True when :meth:`watch_for_speech` works (barge-in: listening while a reply plays)."""
    on_listening: Callable[[], None] | None = None
    """Called once per utterance when capture has really started (the microphone delivers
    frames), so "listening" is shown when the user can be heard, not before."""

    def open(self) -> None:
        """Open the device (raises ``audio_io.NoInputDeviceError`` when there is none)."""

    def calibrate(self, status: Callable[[str], None]) -> None:
        """Let the capture settle (microphone only); ``status`` reports the UI state."""

    def setup_warning(self) -> str | None:
        """A warning to show once the source is open (e.g. the capture is the speaker's
        monitor); None by default."""
        return None

    @property
    def in_progress(self) -> bool:
        """True while the current input has more utterances to come (a long file replayed in
        pieces): a farewell in it does not end the session. False by default."""
        return False

    @property
    def barge_in_by_default(self) -> bool:
        """Whether barge-in is on when the user did not say (``input.barge_in`` unset):
        only a capture that cannot hear the replies (echo-cancelled). False by default."""
        return False

    def watch_for_speech(self, stop, on_speech: Callable[[float], None]) -> None:
        """Listen until ``stop`` (an Event) is set; call ``on_speech(onset_time)`` at speech
        onset and return. Only where :attr:`can_watch_for_speech`."""
        raise NotImplementedError(f"a {self.kind} source cannot listen while the reply plays")

    def reconnect(self, *, timeout: float) -> bool:
        """After :class:`MicrophoneLost`: try to capture again for up to ``timeout`` seconds;
        True once it can. False by default (nothing to reconnect)."""
        return False

    @abstractmethod
    def next_utterance(self, sink=None) -> Utterance | None:
        """The next utterance; None when the input has ended.

        ``sink`` (a ``stt.StreamingTranscription``) receives 16 kHz PCM while audio is
        captured, when the source captures live. Raises UtteranceError for one bad utterance.
        """

    def pause(self) -> None:
        """Stop capturing. A live source pauses itself when an utterance ends; the loop
        calls this only after a barge-in watch that heard nothing."""

    def resume(self) -> None:
        """Capture again (a live source resumes itself when it starts listening)."""

    def close(self) -> None:
        """Release devices."""


# -- files -----------------------------------------------------------------------------
def _load_audio(path: str) -> np.ndarray:
    """16 kHz mono float32, prepared as everywhere else (``ser_model.audio.load_audio``)."""
    from ser_model.audio import load_audio

    return load_audio(path)


QUIET_BLOCK_S = 0.01
"""Block length (seconds) in which a long file's quietest point is looked for."""


def _quiet_cut(y: np.ndarray, rate: int, search: int) -> int:
    """Where to end a piece of ``y``: the middle of its quietest 10 ms block within the
    last ``search`` samples (``len(y)`` when there is nothing to search)."""
    block = max(1, int(QUIET_BLOCK_S * rate))
    lo = max(0, len(y) - search)
    tail = y[lo: lo + (len(y) - lo) // block * block]
    if tail.size < block:
        return len(y)
    energy = np.square(tail.reshape(-1, block), dtype=np.float64).mean(axis=1)
    # the last of the quietest blocks: a long pause is cut as late as possible
    quietest = len(energy) - 1 - int(np.argmin(energy[::-1]))
    return lo + quietest * block + block // 2


class FileSource(UtteranceSource):
    """Each file is one utterance (``--input FILE...``); a file longer than
    ``piece_seconds`` is streamed in pieces of at most that length, cut at a quiet point,
    each one utterance (so a 10-minute recording is one turn per phrase, in bounded memory).
    """

    kind = "file"

    def __init__(self, files: tuple[str, ...], *, piece_seconds: float = 15.0) -> None:
        self._files = list(files)
        self._next = 0
        self.piece_seconds = float(piece_seconds)
        self._pieces = None  # generator of (samples at 16 kHz, offset_s) of the long file being read
        self._piece_file: str | None = None

    @property
    def in_progress(self) -> bool:
        """True while a long file is being replayed in pieces (more may follow)."""
        return self._pieces is not None

    def next_utterance(self, sink=None) -> Utterance | None:
        while True:
            if self._pieces is not None:
                started = time.time()
                try:
                    piece = next(self._pieces, None)
                except UtteranceError:
                    self._pieces = None
                    raise
                if piece is not None:
                    samples, offset = piece
                    return Utterance(samples=samples, sample_rate=16000, started_at=started,
                                     ended_at=time.time(), source="file", file=self._piece_file,
                                     offset=offset)
                self._pieces = None
            if self._next >= len(self._files):
                return None
            path = self._files[self._next]
            self._next += 1
            if self._is_long(path):
                self._pieces = self._stream(path)
                self._piece_file = path
                continue
            started = time.time()
            try:
                samples = _load_audio(path)
            except Exception as err:  # AudioLoadError has a one-line str; anything else: make one
                raise _utterance_error(path, err) from None
            ended = time.time()
            return Utterance(samples=np.asarray(samples, dtype=np.float32), sample_rate=16000,
                             started_at=started, ended_at=ended, source="file", file=path)

    def _is_long(self, path: str) -> bool:
        """Whether libsndfile can stream ``path`` and it lasts longer than a piece."""
        try:
            import soundfile as sf

            from ser_model.quiet import quiet_library_stderr

            with quiet_library_stderr():  # mpg123's own warnings (a cut MP3) stay off stderr
                info = sf.info(path)
        except Exception:  # not readable by libsndfile: load_audio decides (and reports)
            return False
        return info.samplerate > 0 and info.frames > self.piece_seconds * info.samplerate

    def _stream(self, path: str):
        """Yield (16 kHz float32 piece, offset in seconds) from ``path``, one second of the
        file read at a time; each piece ends at the quietest 10 ms in its last third (at
        most 5 s before the limit)."""
        from ser_model.audio import prepare
        from ser_model.errors import AudioLoadError
        from ser_model.windows import mono_blocks

        try:
            with mono_blocks(path) as (rate, blocks):
                limit = max(1, int(self.piece_seconds * rate))
                search = int(min(5.0, self.piece_seconds / 3) * rate)
                buf = np.zeros(0, dtype=np.float32)
                pos = 0  # index in the file of buf[0]

                def piece(y: np.ndarray, at: int):
                    y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
                    # same conditioning as a whole file, without trimming (pieces stay contiguous)
                    out = prepare(y, sample_rate=rate, target_rate=16000, trim=False)
                    return out, at / rate

                for mono in blocks(rate):  # one second of the file at a time
                    buf = np.concatenate([buf, mono])
                    while len(buf) >= limit:
                        cut = _quiet_cut(buf[:limit], rate, search)
                        yield piece(buf[:cut], pos)
                        buf = buf[cut:]
                        pos += cut
                if len(buf) >= int(0.1 * rate):  # a last scrap under 0.1 s holds no phrase
                    yield piece(buf, pos)
        except (AudioLoadError, RuntimeError, ValueError) as err:  # the file, or a block of it, cannot be read
            raise _utterance_error(path, err) from None

    def close(self) -> None:
        if self._pieces is not None:
            self._pieces.close()
            self._pieces = None


def _utterance_error(path: str, err: BaseException) -> UtteranceError:
    """One-line UtteranceError naming ``path`` (AudioLoadError already has a one-line str)."""
    from ser_model.errors import AudioLoadError, one_line

    if isinstance(err, AudioLoadError):
        return UtteranceError(one_line(err), file=path)
    detail = f": {one_line(err)}" if str(err).strip() else ""
    return UtteranceError(f"{path}: {type(err).__name__}{detail}", file=path)


# -- text --------------------------------------------------------------------------------
class TextSource(UtteranceSource):
    """Typed lines (``--text``); no audio, so no emotion from the voice."""

    kind = "text"

    def __init__(self, stream: TextIO | None = None,
                 prompt: Callable[[], str | None] | None = None) -> None:
        self._stream = stream
        self._prompt = prompt

    def _read(self) -> str | None:
        if self._prompt is not None:
            return self._prompt()
        line = (self._stream or sys.stdin).readline()
        return line if line else None

    def next_utterance(self, sink=None) -> Utterance | None:
        while True:
            line = self._read()
            if line is None:
                return None
            line = line.strip()
            if line:
                now = time.time()
                return Utterance(samples=np.zeros(0, dtype=np.float32), sample_rate=16000,
                                 started_at=now, ended_at=now, source="text", text=line)


# -- microphone --------------------------------------------------------------------------
class _LevelStream:
    """Wraps the PyAudio capture stream to report the input level of each chunk."""

    def __init__(self, inner, on_level: Callable[[float], None],
                 gone: threading.Event | None = None) -> None:
        self.inner = inner
        self._on_level = on_level
        self.gone = gone
        """Set (by a :class:`_SourceWatch`) when the device is gone: reads raise MicrophoneLost."""
        self.gone_reason: str | None = None

    def read(self, size):
        if self.gone is not None and self.gone.is_set():
            raise MicrophoneLost(self.gone_reason or "the microphone is gone")
        data = self.inner.read(size, exception_on_overflow=False)
        if data:
            x = np.frombuffer(data, dtype="<i2").astype(np.float32)
            rms = float(np.sqrt(np.mean(x * x))) / 32768.0 if len(x) else 0.0
            self._on_level(rms)
        return data

    def close(self):
        return self.inner.close()

    @property
    def pyaudio_stream(self):
        return self.inner


class _SourceWatch:
    """Watches, once a second on a daemon thread, that the PulseAudio source the capture
    stream started on still exists. When a microphone is unplugged PulseAudio silently moves
    the stream to the next source, often the monitor of the speaker; this turns that into
    :class:`MicrophoneLost` at the next read instead."""

    INTERVAL_S = 1.0

    def __init__(self, source: str) -> None:
        self.source = source
        self.gone = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mic-watch", daemon=True)
        self._thread.start()

    @staticmethod
    def start_for_this_process() -> _SourceWatch | None:
        """A watch on this process's capture source; None without PulseAudio."""
        from assistant.audio_io import pulse_capture_source

        for _ in range(5):  # the stream shows up in the server a moment after it opens
            source = pulse_capture_source(os.getpid())
            if source:
                return _SourceWatch(source)
            time.sleep(0.1)
        return None

    def _run(self) -> None:
        from assistant.audio_io import pulse_sources

        while not self._stop.wait(self.INTERVAL_S):
            sources = pulse_sources()
            if sources is not None and self.source not in sources.values():
                self.gone.set()
                return

    def stop(self) -> None:
        self._stop.set()


class MicrophoneSource(UtteranceSource):
    """PyAudio capture in 32 ms frames; a trained VAD (``assistant.vad``) decides where an
    utterance starts and ends (:class:`assistant.vad.Endpointer`).

    The turn ends after ``input.pause_seconds`` of silence, or ``input.continue_seconds`` when
    the words so far clearly go on; at each pause the streaming transcriber (when it can)
    decodes the words so far, so the transcript is usually ready when the turn ends.
    """

    kind = "mic"
    live = True
    can_watch_for_speech = True

    def __init__(self, config: AssistantConfig, on_level: Callable[[float], None] = lambda x: None) -> None:
        from assistant.vad import EndpointSettings

        self.config = config
        self._on_level = on_level
        self._pa = None
        self._mic: _LevelStream | None = None
        self._paused = False
        self._watch: _SourceWatch | None = None
        self._index: int | None = None
        self._vad = None
        self._pending: list[bytes] = []  # frames heard by the barge-in watch, read first
        cfg = config.input
        self.endpoint = EndpointSettings(hangover_s=cfg.pause_seconds,
                                         continue_s=max(cfg.pause_seconds, cfg.continue_seconds))

    @property
    def rate(self) -> int:
        return int(self.config.input.sample_rate)

    @property
    def frame_samples(self) -> int:
        """Samples per read at the capture rate (32 ms: one Silero frame at 16 kHz)."""
        return int(round(512 * self.rate / 16000))

    def open(self) -> None:
        from assistant.audio_io import AudioSystemError, NoInputDeviceError, probe_devices, resolve_device

        cfg = self.config.input
        try:
            devices = probe_devices()
        except AudioSystemError as err:
            raise NoInputDeviceError(str(err)) from None
        has_default = any(d.is_default_input for d in devices)
        if not any(d.inputs > 0 for d in devices) or (cfg.device is None and not has_default):
            raise NoInputDeviceError("no input device (microphone) was found")
        self._index = resolve_device(cfg.device, devices, kind="input")
        self._open_stream(self._index)

    def _open_stream(self, index: int | None) -> None:
        """Open the capture stream on PortAudio device ``index`` (None: the default)."""
        from assistant.audio_io import NoInputDeviceError, open_pyaudio, quiet_stderr

        if self._vad is None:
            from assistant.vad import make_vad

            self._vad = make_vad(self.config.input.vad)
        try:
            if self._pa is None:
                self._pa = open_pyaudio()
            import pyaudio

            with quiet_stderr():
                stream = self._pa.open(format=pyaudio.paInt16, channels=1, rate=self.rate, input=True,
                                       input_device_index=index, frames_per_buffer=self.frame_samples)
        except (OSError, ValueError) as err:
            raise NoInputDeviceError(f"no input device could be opened ({err})") from None
        self._paused = False
        self._watch = _SourceWatch.start_for_this_process()
        self._mic = _LevelStream(stream, self._on_level, self._watch.gone if self._watch else None)
        if self._watch is not None:
            self._mic.gone_reason = f"the microphone ({self._watch.source}) was disconnected"

    @property
    def device_name(self) -> str | None:
        """The PulseAudio source being captured, when known."""
        return self._watch.source if self._watch is not None else None

    def setup_warning(self) -> str | None:
        """The :meth:`monitor_warning`, when the device was not chosen by the user."""
        return self.monitor_warning() if self.config.input.device is None else None

    @property
    def barge_in_by_default(self) -> bool:
        """On when PulseAudio's echo-cancelled source is captured (it does not hear the reply)."""
        return "echo" in (self.device_name or "").lower()

    def monitor_warning(self) -> str | None:
        """A warning when the capture source is the monitor of the speaker (the assistant
        would hear its own replies), else None."""
        from assistant.audio_io import pulse_default_sink

        if self._watch is None or not self._watch.source.endswith(".monitor"):
            return None
        sink = pulse_default_sink()
        if sink and self._watch.source == f"{sink}.monitor":
            return (f"capturing from {self._watch.source}, the monitor of the speaker: the assistant "
                    f"would hear its own replies (plug in a microphone or pick one with --device)")
        return None

    def reconnect(self, *, timeout: float, interval: float = 0.25,
                  stop: Callable[[], bool] | None = None) -> bool:
        """After :class:`MicrophoneLost`: release the stream and try to open the microphone
        again every ``interval`` seconds (PulseAudio) or second (otherwise), for up to
        ``timeout`` seconds. With PulseAudio only the source that was lost counts as back
        (never the speaker's monitor), and the device chosen at start is reopened without a
        new probe. True once open.
        """
        from assistant.audio_io import DeviceError, NoInputDeviceError, pulse_sources

        lost = self.device_name
        self.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stop is not None and stop():
                return False
            if lost is not None:
                time.sleep(interval)
                sources = pulse_sources()
                if sources is not None and lost not in sources.values():
                    continue
            else:
                time.sleep(max(interval, 1.0))
            try:
                if lost is not None:
                    self._open_stream(self._index)
                else:
                    self.open()
            except (NoInputDeviceError, DeviceError, OSError):
                self.close()
                continue
            if lost is not None and self.device_name not in (None, lost):
                self.close()  # opened, but on another source (e.g. the speaker's monitor)
                continue
            return True
        return False

    def calibrate(self, status: Callable[[str], None]) -> None:
        """Let the capture settle (the VAD needs no threshold): ``calibrate_seconds`` are read
        and dropped, and the VAD sees them once so its first real frame is not its first."""
        assert self._mic is not None, "open() first"
        status("calibrating")
        n = int(self.config.input.calibrate_seconds * self.rate / self.frame_samples)
        self.resume()
        for _ in range(n):
            self._vad.prob(self._frame16(self._read()))
        self._vad.reset()

    def _read(self) -> bytes:
        if self._pending:
            return self._pending.pop(0)
        try:
            return self._mic.read(self.frame_samples)
        except MicrophoneLost:
            raise
        except OSError as err:  # PortAudio: the device went away under the stream
            raise MicrophoneLost(f"the microphone stopped working ({err})") from None

    def _frame16(self, raw: bytes) -> np.ndarray:
        """One frame as float32 at 16 kHz, exactly the VAD's frame length."""
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        if self.rate != 16000:
            from ser_model.audio import resample

            x = resample(x, self.rate, 16000, quality="QQ")  # per 32 ms frame, for the VAD only
        n = self._vad.frame_samples
        return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))

    def next_utterance(self, sink=None) -> Utterance | None:
        """Frames until the endpointer says the turn ended (or ``phrase_time_limit``)."""
        from collections import deque

        from assistant.stt import to_pcm16
        from assistant.vad import Endpointer

        assert self._mic is not None, "open() first"
        cfg = self.config.input
        fs = self.frame_samples / self.rate
        ep = Endpointer(self._vad, self.endpoint)
        pre: deque[bytes] = deque(maxlen=max(1, int(self.endpoint.preroll_s / fs)))
        frames: list[bytes] = []
        started_at = last_voiced_at = None
        voiced_frames = 0
        self.resume()
        told = False
        while True:
            raw = self._read()
            if not raw:
                break
            if not told:  # the stream delivers: the user can be heard from now on
                told = True
                if self.on_listening is not None:
                    self.on_listening()
            x = self._frame16(raw)
            event = ep.push(x)
            now = time.time()
            if not ep.started:
                pre.append(raw)
                continue
            if event == "start":
                frames = [*pre, raw]
                started_at = now - len(frames) * fs
                if sink is not None:
                    for f in frames:
                        sink.feed(f if self.rate == 16000 else to_pcm16(self._frame16(f)))
            else:
                frames.append(raw)
                if sink is not None:
                    sink.feed(raw if self.rate == 16000 else to_pcm16(x))
            if ep.silence_s == 0.0:  # this frame was voiced
                last_voiced_at = now
                voiced_frames = len(frames)
                if sink is not None:
                    sink.voiced_until = len(frames) * 512
            if event == "pause" and sink is not None:
                ep.words = sink.speculate()
            if event == "end" or len(frames) * fs >= cfg.phrase_time_limit:
                break
        ended = time.time()
        self.pause()  # not recording while the assistant thinks and speaks
        if not frames:
            return None  # the stream ended (device gone)
        pcm = np.frombuffer(b"".join(frames), dtype="<i2").astype(np.float32) / 32768.0
        return Utterance(samples=pcm, sample_rate=self.rate, started_at=started_at or ended,
                         ended_at=ended, source="mic", speech_ended_at=last_voiced_at,
                         voiced_seconds=ep.voiced_s,
                         endpoint=EndpointTrace(words_at_pause=ep.text, end_prob=ep.end_prob,
                                                silence_s=(len(frames) - voiced_frames) * fs, pauses=ep.pauses,
                                                words_after_s=ep.words_after_s, last_word_s=ep.last_word_s))

    # -- barge-in ----------------------------------------------------------------------
    def watch_for_speech(self, stop, on_speech: Callable[[float], None]) -> None:
        """Listen while the assistant speaks (barge-in): read frames until ``stop`` (an Event)
        is set; at speech onset call ``on_speech(onset_time)`` and return. The frames heard
        from just before the onset are kept and start the next utterance."""
        from collections import deque

        from assistant.vad import Endpointer, EndpointSettings

        ep = Endpointer(self._vad, EndpointSettings(onset_s=self.endpoint.onset_s))
        fs = self.frame_samples / self.rate
        pre: deque[bytes] = deque(maxlen=max(1, int(self.endpoint.preroll_s / fs)))
        self.resume()
        while not stop.is_set():
            try:
                raw = self._read()
            except MicrophoneLost:
                return
            pre.append(raw)
            if ep.push(self._frame16(raw)) == "start":
                self._pending = list(pre)
                on_speech(time.time() - ep.voiced_s)
                return
        self.pause()

    def pause(self) -> None:
        if self._mic is not None and not self._paused:
            stream = self._mic.pyaudio_stream
            if not stream.is_stopped():
                stream.stop_stream()
            self._paused = True

    def resume(self) -> None:
        if self._mic is not None and self._paused:
            stream = self._mic.pyaudio_stream
            if stream.is_stopped():
                stream.start_stream()
            self._paused = False

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        from assistant.audio_io import quiet_stderr

        if self._mic is not None:
            try:
                with quiet_stderr():
                    self._mic.close()
            except OSError:
                pass  # the device is already gone; nothing left to release
        self._mic = None
        if self._pa is not None:
            with quiet_stderr():
                try:
                    self._pa.terminate()
                except Exception:
                    pass
            self._pa = None


def make_source(config: AssistantConfig, *, on_level: Callable[[float], None] = lambda x: None,
                prompt: Callable[[], str | None] | None = None) -> UtteranceSource:
    """The source chosen by ``config``: files, typed text, or the microphone."""
    kind = config.source_kind
    if kind == "file":
        return FileSource(config.input.files, piece_seconds=config.input.phrase_time_limit)
    if kind == "text":
        return TextSource(prompt=prompt)
    return MicrophoneSource(config, on_level=on_level)
