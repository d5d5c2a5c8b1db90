"""Speaking replies: pyttsx3 (espeak-ng on Linux) or silence, chosen by :func:`make_speaker`.

pyttsx3's own ``say()`` on Linux shells out to ``aplay`` and gives no way to choose the
output device or to know when sound starts. Instead the reply is synthesised with pyttsx3's
``save_to_file`` into a private temporary WAV (espeak-ng synthesises a sentence in a few
tens of milliseconds) and played with PyAudio on the chosen output device, in small chunks,
so that the start of speech is measured and Ctrl-C / SIGTERM stop it promptly.

Prosody: pyttsx3's espeak driver exposes ``rate`` (words per minute) and ``volume``; in
pyttsx3 2.99 it also exposes ``pitch`` (espeak-ng's 0-99 pitch parameter, set with
``espeak_SetParameter(espeakPITCH)``). Older pyttsx3 releases have no pitch property; there
we keep rate and volume and leave pitch at the voice's default (see ``_apply_style``).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import time
import wave
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Optional

from assistant.config import AssistantConfig
from assistant.types import Reply, TtsStyle


class TtsError(Exception):
    """Speech output failed; ``str(err)`` is one line."""


@dataclass(frozen=True)
class Spoken:
    """What happened when a reply was said."""

    audio_seconds: float
    """Length of the synthesised speech."""
    synth_seconds: float
    """Time spent synthesising before sound started."""
    interrupted: bool = False
    """True when playback was cut short."""


class Speaker(ABC):
    """Says a reply."""

    name = "?"

    @abstractmethod
    def say(self, reply: Reply, on_start: Callable[[], None] = lambda: None) -> Spoken:
        """Speak ``reply``; call ``on_start`` the moment sound starts. Raises TtsError."""

    def close(self) -> None:
        """Release the audio device."""


class SilentSpeaker(Speaker):
    """``--no-speak``: replies are printed only."""

    name = "none"

    def say(self, reply: Reply, on_start: Callable[[], None] = lambda: None) -> Spoken:
        on_start()
        return Spoken(audio_seconds=0.0, synth_seconds=0.0)


class Pyttsx3Speaker(Speaker):
    """pyttsx3 synthesis, PyAudio playback."""

    name = "pyttsx3"
    chunk_frames = 1024

    def __init__(self, *, output_device: Optional[str] = None, voice: Optional[str] = None) -> None:
        try:
            import pyttsx3

            with contextlib.redirect_stdout(io.StringIO()):
                self._engine = pyttsx3.init("espeak") if os.name == "posix" else pyttsx3.init()
        except Exception as err:
            raise TtsError(f"text-to-speech unavailable (pyttsx3/espeak-ng): {_one_line(err)}") from None
        if voice:
            try:
                self._engine.setProperty("voice", voice)
            except Exception as err:
                raise TtsError(f"unknown voice {voice!r}: {_one_line(err)}") from None
        self._has_pitch = True
        self._tmpdir = tempfile.mkdtemp(prefix="assistant-tts-")
        os.chmod(self._tmpdir, 0o700)
        from assistant.audio_io import list_devices, open_pyaudio, resolve_device

        try:
            self._pa = open_pyaudio()
            self._device = resolve_device(output_device, list_devices(self._pa), kind="output")
        except Exception as err:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise TtsError(f"no audio output: {_one_line(err)}") from None

    def _apply_style(self, style: TtsStyle) -> None:
        self._engine.setProperty("rate", int(style.rate))
        self._engine.setProperty("volume", float(style.volume))
        if self._has_pitch:
            try:
                self._engine.setProperty("pitch", int(style.pitch))
            except (KeyError, ValueError):
                # This pyttsx3 driver has no pitch: keep rate and volume, default pitch.
                self._has_pitch = False

    def synthesize(self, text: str, style: TtsStyle) -> tuple[bytes, int]:
        """16-bit mono PCM of ``text`` and its sample rate."""
        path = os.path.join(self._tmpdir, "reply.wav")
        self._apply_style(style)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # save_to_file prints a line
                self._engine.save_to_file(text, path)
                self._engine.runAndWait()
            with wave.open(path, "rb") as w:
                rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
                pcm = w.readframes(w.getnframes())
        except Exception as err:
            raise TtsError(f"speech synthesis failed: {_one_line(err)}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if width != 2 or channels != 1 or not pcm:
            raise TtsError("speech synthesis produced no audio")
        return pcm, rate

    def say(self, reply: Reply, on_start: Callable[[], None] = lambda: None) -> Spoken:
        t0 = time.perf_counter()
        pcm, rate = self.synthesize(reply.text, reply.tts_style)
        synth = time.perf_counter() - t0
        import pyaudio

        try:
            stream = self._pa.open(format=pyaudio.paInt16, channels=1, rate=rate, output=True,
                                   output_device_index=self._device,
                                   frames_per_buffer=self.chunk_frames)
        except Exception as err:
            raise TtsError(f"cannot open the audio output: {_one_line(err)}") from None
        step = self.chunk_frames * 2
        interrupted = True
        try:
            on_start()
            for i in range(0, len(pcm), step):
                stream.write(pcm[i:i + step])
            interrupted = False
        except OSError as err:
            raise TtsError(f"audio playback failed: {_one_line(err)}") from None
        finally:
            with contextlib.suppress(Exception):
                if interrupted:
                    stream.abort()  # drop what is queued: stop talking now
                else:
                    stream.stop_stream()  # let the last buffers play out
                stream.close()
        return Spoken(audio_seconds=len(pcm) / 2 / rate, synth_seconds=synth)

    def close(self) -> None:
        from assistant.audio_io import quiet_stderr

        with quiet_stderr():
            with contextlib.suppress(Exception):
                self._pa.terminate()
        shutil.rmtree(self._tmpdir, ignore_errors=True)


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def make_speaker(config: AssistantConfig) -> Speaker:
    """pyttsx3 when speaking is on, else the silent speaker. Raises TtsError."""
    if not config.speech.speak:
        return SilentSpeaker()
    return Pyttsx3Speaker(output_device=config.speech.output_device, voice=config.speech.voice)
