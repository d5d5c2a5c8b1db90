"""Speaking replies: pyttsx3's espeak-ng binding or silence, chosen by :func:`make_speaker`.

pyttsx3's own ``say()`` on Linux shells out to ``aplay`` and gives no way to choose the output
device or to know when sound starts; its ``save_to_file`` path also proved flaky here: the
espeak driver's synthesis callback intermittently hit ``ReferenceError: weakly-referenced
object no longer exists`` (its driver is reached through a weakref proxy), failing the turn.
So we use pyttsx3's ctypes binding of espeak-ng (``pyttsx3.drivers._espeak``) directly, in
``AUDIO_OUTPUT_SYNCHRONOUS`` mode with our own callback that collects the samples (a sentence
takes a few tens of milliseconds), and play them with PyAudio on the chosen output device in
small chunks, so that the start of speech is measured and Ctrl-C / SIGTERM stop it promptly.

Prosody: espeak-ng's ``RATE`` (words per minute), ``VOLUME`` (0-200, 100 = normal; our
0.0-1.0 maps onto 0-100 as pyttsx3 does) and ``PITCH`` (0-99, 50 = normal) parameters, the
same ones pyttsx3's ``setProperty("rate"/"volume"/"pitch")`` set. (pyttsx3 releases before
2.9x had no pitch property; this binding sets pitch on any of them.)
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from assistant.config import AssistantConfig
from assistant.errors import AssistantError
from assistant.types import Reply, TtsStyle
from ser_model.errors import one_line


class TtsError(AssistantError):
    """Speech output failed; ``str(err)`` is one line."""


@dataclass(frozen=True)
class Spoken:
    """What happened when a reply was said."""

    audio_seconds: float
    """Length of the synthesised speech."""
    synth_seconds: float
    """Time spent synthesising before sound started."""
    interrupted: bool = False
    """True when playback was cut short (barge-in: the user spoke)."""
    stopped_at: float | None = None
    """Wall-clock time playback was stopped, when ``interrupted``."""
    played_seconds: float | None = None
    """Seconds of the reply written to the device before it stopped, when ``interrupted``."""


class Speaker(ABC):
    """Says a reply."""

    name = "?"
    audible = True
    """False when replies make no sound (``--no-speak``): nothing to listen over (barge-in),
    no "speaking" state."""

    @abstractmethod
    def say(self, reply: Reply, on_start: Callable[[], None] = lambda: None, stop=None) -> Spoken:
        """Speak ``reply``; call ``on_start`` the moment sound starts; stop as soon as ``stop``
        (a ``threading.Event``, barge-in) is set. Raises TtsError."""

    def warm_up(self) -> None:
        """Get ready to speak at once (open the output); a no-op by default."""

    def close(self) -> None:
        """Release the audio device."""


class SilentSpeaker(Speaker):
    """``--no-speak``: replies are printed only."""

    name = "none"
    audible = False

    def say(self, reply: Reply, on_start: Callable[[], None] = lambda: None, stop=None) -> Spoken:
        on_start()
        return Spoken(audio_seconds=0.0, synth_seconds=0.0)


class EspeakSynth:
    """espeak-ng through pyttsx3's ctypes binding, synchronous, samples collected in memory.

    espeak-ng can be initialised only once per process, so one instance is shared.
    """

    _instance: EspeakSynth | None = None
    _lock = threading.RLock()

    def __init__(self) -> None:
        from pyttsx3.drivers import _espeak

        self._e = _espeak
        self.sample_rate = _espeak.Initialize(_espeak.AUDIO_OUTPUT_SYNCHRONOUS, 200)
        if self.sample_rate <= 0:
            raise TtsError("could not initialise espeak-ng")
        self._chunks: list[bytes] = []

        def on_synth(wav, numsamples, events):
            if numsamples > 0:
                self._chunks.append(ctypes.string_at(wav, numsamples * 2))
            return 0

        self._callback = on_synth  # the binding keeps the ctypes wrapper alive
        _espeak.SetSynthCallback(on_synth)

    @classmethod
    def shared(cls) -> EspeakSynth:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def set_voice(self, voice: str) -> None:
        if self._e.SetVoiceByName(voice.encode("utf-8")) != 0:
            raise TtsError(f"unknown espeak-ng voice {voice!r}")

    def synthesize(self, text: str, style: TtsStyle) -> bytes:
        e = self._e
        with self._lock:
            e.SetParameter(e.RATE, int(style.rate), 0)
            e.SetParameter(e.VOLUME, int(round(max(0.0, min(1.0, style.volume)) * 100)), 0)
            e.SetParameter(e.PITCH, int(max(0, min(99, style.pitch))), 0)
            self._chunks = []
            e.Synth(text.encode("utf-8"), flags=e.ENDPAUSE | e.CHARS_UTF8)
            pcm = b"".join(self._chunks)
            self._chunks = []
        return pcm


class Pyttsx3Speaker(Speaker):
    """espeak-ng synthesis (pyttsx3's binding), PyAudio playback."""

    name = "pyttsx3"
    chunk_frames = 1024

    def __init__(self, *, output_device: str | None = None, voice: str | None = None) -> None:
        try:
            self._synth = EspeakSynth.shared()
        except TtsError:
            raise
        except Exception as err:  # missing libespeak-ng, pyttsx3 not installed ...
            raise TtsError(f"text-to-speech unavailable (pyttsx3/espeak-ng): {one_line(err)}") from None
        if voice:
            self._synth.set_voice(voice)
        self._stream = None
        self._stream_rate: int | None = None
        from assistant.audio_io import open_pyaudio, probe_devices, resolve_device

        try:
            devices = probe_devices()  # in a child: PortAudio can abort on broken ALSA set-ups
            if not any(d.outputs > 0 for d in devices):
                raise TtsError("no output device was found")
            self._device = resolve_device(output_device, devices, kind="output")
            self._pa = open_pyaudio()
        except Exception as err:
            raise TtsError(f"no audio output: {one_line(err)}") from None

    def synthesize(self, text: str, style: TtsStyle) -> tuple[bytes, int]:
        """16-bit mono PCM of ``text`` and its sample rate."""
        try:
            pcm = self._synth.synthesize(text, style)
        except Exception as err:
            raise TtsError(f"speech synthesis failed: {one_line(err)}") from None
        if not pcm:
            raise TtsError("speech synthesis produced no audio")
        return pcm, self._synth.sample_rate

    def _output(self, rate: int):
        """The output stream for ``rate``, opened once and kept open between replies.

        Opening a PulseAudio stream through PortAudio usually takes ~1 ms but, measured on the
        virtual-device rig, spiked to 270 ms and 1.3 s (the first): time the user waits in
        silence after the reply is ready. A kept-open stream starts sounding within ~1 ms of
        the first write. Between replies it simply underruns (ALSA's notice is kept quiet)."""
        import pyaudio

        if self._stream is not None and self._stream_rate == rate:
            return self._stream
        self._drop_stream()
        try:
            self._stream = self._pa.open(format=pyaudio.paInt16, channels=1, rate=rate, output=True,
                                         output_device_index=self._device,
                                         frames_per_buffer=self.chunk_frames)
        except Exception as err:
            raise TtsError(f"cannot open the audio output: {one_line(err)}") from None
        self._stream_rate = rate
        return self._stream

    def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            from assistant.audio_io import quiet_stderr

            with quiet_stderr(), contextlib.suppress(Exception):
                stream.close()  # on an active stream this discards what is queued: stop talking now

    def warm_up(self) -> None:
        """Open the output stream now (at start-up), so the first reply does not pay for it."""
        with contextlib.suppress(TtsError):
            self._output(self._synth.sample_rate)

    def say(self, reply: Reply, on_start: Callable[[], None] = lambda: None, stop=None) -> Spoken:
        t0 = time.perf_counter()
        pcm, rate = self.synthesize(reply.text, reply.tts_style)
        synth = time.perf_counter() - t0
        stream = self._output(rate)
        step = self.chunk_frames * 2
        from assistant.audio_io import quiet_stderr

        barged = False
        written = 0
        try:
            on_start()
            with quiet_stderr():  # ALSA prints "underrun occurred" on a busy machine
                for i in range(0, len(pcm), step):
                    if stop is not None and stop.is_set():
                        barged = True
                        break
                    stream.write(pcm[i:i + step])
                    written = i + step
        except OSError as err:
            self._drop_stream()  # a broken stream is opened afresh for the next reply
            raise TtsError(f"audio playback failed: {one_line(err)}") from None
        except BaseException:
            self._drop_stream()  # Ctrl-C / SIGTERM: stop the sound at once
            raise
        if barged:
            self._drop_stream()  # discard what is queued: the user is talking
            return Spoken(audio_seconds=len(pcm) / 2 / rate, synth_seconds=synth, interrupted=True,
                          stopped_at=time.time(), played_seconds=min(written, len(pcm)) / 2 / rate)
        # The stream stays open, so nothing drains it: wait out what is still queued, so the
        # reply has finished sounding when say() returns (the microphone reopens after it).
        with contextlib.suppress(Exception):
            time.sleep(min(1.0, max(0.0, float(stream.get_output_latency()))))
        return Spoken(audio_seconds=len(pcm) / 2 / rate, synth_seconds=synth)

    def close(self) -> None:
        from assistant.audio_io import quiet_stderr

        stream, self._stream = self._stream, None
        with quiet_stderr(), contextlib.suppress(Exception):
            if stream is not None:
                stream.stop_stream()  # let the last reply's buffers play out
                stream.close()
            self._pa.terminate()


def make_speaker(config: AssistantConfig) -> Speaker:
    """pyttsx3 when speaking is on, else the silent speaker. Raises TtsError."""
    if not config.speech.speak:
        return SilentSpeaker()
    return Pyttsx3Speaker(output_device=config.speech.output_device, voice=config.speech.voice)
