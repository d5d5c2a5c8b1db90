"""Where utterances come from: microphone, audio files, or typed lines.

All three implement :class:`UtteranceSource`; :func:`make_source` picks one from the config.
The loop calls :meth:`UtteranceSource.next_utterance` once per turn and, around speaking,
:meth:`pause`/:meth:`resume` so that the microphone never records the assistant's own voice.
"""

from __future__ import annotations

import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Optional, TextIO

import numpy as np

from assistant.config import AssistantConfig
from assistant.types import Utterance


class UtteranceError(Exception):
    """One utterance could not be read (e.g. an unreadable file); the session goes on."""

    def __init__(self, message: str, *, file: Optional[str] = None) -> None:
        super().__init__(message)
        self.file = file


class UtteranceSource(ABC):
    """A sequence of utterances."""

    kind: str = "?"

    def open(self) -> None:
        """Open the device (raises ``audio_io.NoInputDeviceError`` when there is none)."""

    def calibrate(self, status: Callable[[str], None]) -> None:
        """Measure ambient noise (microphone only); ``status`` reports the UI state."""

    @abstractmethod
    def next_utterance(self, sink=None) -> Optional[Utterance]:
        """The next utterance; None when the input has ended.

        ``sink`` (a ``stt.StreamingTranscription``) receives 16 kHz PCM while audio is
        captured, when the source captures live. Raises UtteranceError for one bad utterance.
        """

    def pause(self) -> None:
        """Stop capturing (while the assistant speaks)."""

    def resume(self) -> None:
        """Capture again."""

    def close(self) -> None:
        """Release devices."""


# -- files -----------------------------------------------------------------------------
def _load_audio(path: str) -> np.ndarray:
    """16 kHz mono float32 via ``ser_model.audio.load_audio`` (or soundfile until it exists)."""
    try:
        from ser_model.audio import load_audio
    except ImportError:
        load_audio = _fallback_load_audio
    return load_audio(path)


def _fallback_load_audio(path: str) -> np.ndarray:
    from ser_model.errors import AudioLoadError

    p = Path(path)
    if not p.exists():
        raise AudioLoadError(path, "no such file")
    if p.is_dir():
        raise AudioLoadError(path, "is a directory")
    try:
        import soundfile as sf

        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioLoadError(path, f"not a readable audio file ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    if not len(data):
        raise AudioLoadError(path, "empty audio")
    y = data.mean(axis=1)
    if sr != 16000:
        from assistant.stt import _resample

        y = _resample(y, sr, 16000)
    y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    return y


class FileSource(UtteranceSource):
    """Each file is one utterance (``--input FILE...``)."""

    kind = "file"

    def __init__(self, files: tuple[str, ...]) -> None:
        self._files = list(files)
        self._next = 0

    def next_utterance(self, sink=None) -> Optional[Utterance]:
        if self._next >= len(self._files):
            return None
        path = self._files[self._next]
        self._next += 1
        started = time.time()
        try:
            samples = _load_audio(path)
        except Exception as err:  # AudioLoadError has a one-line str; anything else: make one
            from ser_model.errors import AudioLoadError

            msg = str(err) if isinstance(err, AudioLoadError) else f"{path}: {type(err).__name__}: {err}"
            raise UtteranceError(msg.splitlines()[0] if msg else path, file=path) from None
        ended = time.time()
        return Utterance(samples=np.asarray(samples, dtype=np.float32), sample_rate=16000,
                         started_at=started, ended_at=ended, source="file", file=path)


# -- text --------------------------------------------------------------------------------
class TextSource(UtteranceSource):
    """Typed lines (``--text``); no audio, so no emotion from the voice."""

    kind = "text"

    def __init__(self, stream: Optional[TextIO] = None,
                 prompt: Optional[Callable[[], Optional[str]]] = None) -> None:
        self._stream = stream
        self._prompt = prompt

    def _read(self) -> Optional[str]:
        if self._prompt is not None:
            return self._prompt()
        line = (self._stream or sys.stdin).readline()
        return line if line else None

    def next_utterance(self, sink=None) -> Optional[Utterance]:
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
    """Wraps SpeechRecognition's stream to report the input level of each chunk."""

    def __init__(self, inner, on_level: Callable[[float], None]) -> None:
        self.inner = inner
        self._on_level = on_level

    def read(self, size):
        data = self.inner.read(size)
        if data:
            x = np.frombuffer(data, dtype="<i2").astype(np.float32)
            rms = float(np.sqrt(np.mean(x * x))) / 32768.0 if len(x) else 0.0
            self._on_level(rms)
        return data

    def close(self):
        return self.inner.close()

    @property
    def pyaudio_stream(self):
        return self.inner.pyaudio_stream


class MicrophoneSource(UtteranceSource):
    """PyAudio capture through SpeechRecognition (``sr.Microphone`` + ``Recognizer.listen``)."""

    kind = "mic"

    def __init__(self, config: AssistantConfig, on_level: Callable[[float], None] = lambda x: None) -> None:
        self.config = config
        self._on_level = on_level
        self._mic = None
        self._source = None
        self._recognizer = None
        self._paused = False

    def open(self) -> None:
        from assistant.audio_io import (AudioSystemError, NoInputDeviceError, probe_devices,
                                        quiet_stderr, resolve_device)

        cfg = self.config.input
        try:
            devices = probe_devices()
        except AudioSystemError as err:
            raise NoInputDeviceError(str(err)) from None
        has_default = any(d.is_default_input for d in devices)
        if not any(d.inputs > 0 for d in devices) or (cfg.device is None and not has_default):
            raise NoInputDeviceError("no input device (microphone) was found")
        index = resolve_device(cfg.device, devices, kind="input")
        with quiet_stderr():
            import speech_recognition as sr

            try:
                self._mic = sr.Microphone(device_index=index, sample_rate=cfg.sample_rate)
                self._mic.__enter__()
            except (OSError, AssertionError, AttributeError) as err:
                raise NoInputDeviceError(f"no input device could be opened ({err})") from None
        if self._mic.stream is None:  # sr.Microphone swallows the PortAudio error on open
            raise NoInputDeviceError("no input device could be opened")
        self._mic.stream = _LevelStream(self._mic.stream, self._on_level)
        r = sr.Recognizer()
        r.pause_threshold = cfg.pause_seconds
        r.non_speaking_duration = min(0.3, cfg.pause_seconds)
        r.dynamic_energy_threshold = True
        self._recognizer = r

    def calibrate(self, status: Callable[[str], None]) -> None:
        cfg = self.config.input
        r = self._recognizer
        assert r is not None and self._mic is not None, "open() first"
        status("calibrating")
        if cfg.calibrate_seconds > 0:
            r.adjust_for_ambient_noise(self._mic, duration=cfg.calibrate_seconds)
        r.energy_threshold = max(r.energy_threshold, cfg.min_energy)

    def next_utterance(self, sink=None) -> Optional[Utterance]:
        assert self._mic is not None and self._recognizer is not None, "open() first"
        self.resume()
        cfg = self.config.input
        rate = self._mic.SAMPLE_RATE
        chunks: list[bytes] = []
        first_at: Optional[float] = None
        for audio in self._recognizer.listen(self._mic, phrase_time_limit=cfg.phrase_time_limit,
                                             stream=True):
            raw = audio.get_raw_data()
            if first_at is None:
                first_at = time.time() - len(raw) / 2 / rate
            chunks.append(raw)
            if sink is not None:
                sink.feed(raw if rate == 16000 else audio.get_raw_data(convert_rate=16000))
        ended = time.time()
        self.pause()  # not recording while the assistant thinks and speaks
        if not chunks:
            return None  # the stream ended (device gone)
        pcm = np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.float32) / 32768.0
        return Utterance(samples=pcm, sample_rate=rate, started_at=first_at or ended,
                         ended_at=ended, source="mic")

    def pause(self) -> None:
        if self._mic is not None and self._mic.stream is not None and not self._paused:
            stream = self._mic.stream.pyaudio_stream
            if not stream.is_stopped():
                stream.stop_stream()
            self._paused = True

    def resume(self) -> None:
        if self._mic is not None and self._mic.stream is not None and self._paused:
            stream = self._mic.stream.pyaudio_stream
            if stream.is_stopped():
                stream.start_stream()
            self._paused = False

    def close(self) -> None:
        if self._mic is not None and self._mic.stream is not None:
            from assistant.audio_io import quiet_stderr

            try:
                with quiet_stderr():
                    self._mic.__exit__(None, None, None)
            except OSError:
                pass
        self._mic = None


def make_source(config: AssistantConfig, *, on_level: Callable[[float], None] = lambda x: None,
                prompt: Optional[Callable[[], Optional[str]]] = None) -> UtteranceSource:
    """The source chosen by ``config``: files, typed text, or the microphone."""
    kind = config.source_kind
    if kind == "file":
        return FileSource(config.input.files)
    if kind == "text":
        return TextSource(prompt=prompt)
    return MicrophoneSource(config, on_level=on_level)
