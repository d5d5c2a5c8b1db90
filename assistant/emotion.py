"""The emotion model, loaded in a background thread (TensorFlow's import is slow).

The assistant uses only ``ser_model.EmotionRecognizer.load(path)``, ``.predict(samples,
sample_rate)`` and, to start at a pause, ``.encode`` / ``.predict_encoded``.
:func:`make_recognizer` returns an :class:`EmotionEngine` whose loading starts at once; the
first :meth:`EmotionEngine.predict` waits for it. When the model cannot be loaded the
conversation goes on without emotion (every turn uncertain) and the reason is reported; a
bundle the user named with ``--model`` is first checked synchronously by
:func:`check_bundle` (no TensorFlow), and a broken one is a set-up error. Utterances longer
than :data:`LONG_UTTERANCE_S` get an emotion per :data:`WINDOW_S` window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from assistant.config import AssistantConfig
from assistant.types import EmotionWindow
from ser_model.errors import one_line
from ser_model.result import EmotionResult

WINDOW_S = 3.0
"""Length of one emotion window in a long utterance (seconds); windows do not overlap."""
LONG_UTTERANCE_S = 2 * WINDOW_S
"""Utterances longer than this get an emotion per window instead of one for the whole."""


class EmotionEngine:
    """Background-loaded recognizer; ``predict`` returns None when there is no emotion.

    With a :class:`~assistant.profiles.ProfileStore`, a model that supports voice profiles
    scores each utterance with the user's profile as it was, then adds the utterance to it
    and saves it (causal adaptation). ``profile_clips`` is the profile's count before the
    latest prediction; ``take_notices`` gives one-line messages for the user.
    """

    def __init__(self, loader: Callable[[], Any], *, profiles: Any = None) -> None:
        self._loader = loader
        self._profiles = profiles
        self.profile: Any = None
        """The user's VoiceProfile while adaptation is on (None: off or not supported)."""
        self.profile_clips: int | None = None
        """Utterances in the profile before the latest prediction (None: no adaptation)."""
        self._notices: list[str] = []
        self._save_failed = False
        self._model: Any = None
        self.error: str | None = None
        """One-line reason the model is unavailable, once loading failed."""
        self.load_seconds: float | None = None
        self.model_version: str | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._load, name="ser-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            self._model = self._loader()
            self.model_version = getattr(self._model, "model_version", None)
            if self._profiles is not None and getattr(self._model, "supports_profiles", False):
                self.profile, notice = self._profiles.load_for(self._model)
                if notice:
                    self._notices.append(notice)
        except BaseException as err:  # report any failure; the session goes on without emotion
            self.error = f"emotion model unavailable: {one_line(err)}"
        finally:
            self.load_seconds = time.perf_counter() - t0
            self._ready.set()

    @property
    def min_confidence(self) -> float | None:
        """The loaded model's recommended uncertainty threshold (its config.json), if any."""
        config = getattr(self._model, "config", None)
        value = config.get("min_confidence") if isinstance(config, dict) else None
        return float(value) if isinstance(value, (int, float)) and 0.0 <= value <= 1.0 else None

    @property
    def ready(self) -> bool:
        """True once loading has finished (successfully or not)."""
        return self._ready.is_set()

    LOAD_TIMEOUT_S = 180.0
    """A turn waits this long for the model to load (seconds: a few on an idle machine); a
    turn after that has no emotion, and says why (:meth:`_loaded`)."""

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for loading; True when a model is available."""
        self._ready.wait(timeout)
        return self._model is not None

    def _loaded(self) -> bool:
        """Wait for the model, at most ``LOAD_TIMEOUT_S``: True when loaded, False when it
        failed to load; raises SerError when it is still loading."""
        if self.wait(self.LOAD_TIMEOUT_S):
            return True
        if not self._ready.is_set():
            from ser_model.errors import SerError

            raise SerError(f"the emotion model did not load in {self.LOAD_TIMEOUT_S:.0f} s")
        return False

    @property
    def can_encode(self) -> bool:
        """The loaded model can be run in two parts (:meth:`encode`, then :meth:`predict` with
        ``encoded``): the loop encodes the words so far at a pause, before the turn ends."""
        return self.ready and callable(getattr(self._model, "encode", None))

    def encode(self, samples: np.ndarray, sample_rate: int) -> Any:
        """The costly part of a prediction (``EmotionRecognizer.encode``); None when no model
        or no speech. Raises SerError on failure."""
        if not self._loaded():
            return None
        from ser_model import NoSpeechError

        try:
            return self._model.encode(samples, sample_rate)
        except NoSpeechError:
            return None

    def predict(self, samples: np.ndarray, sample_rate: int, *, encoded: Any = None) -> EmotionResult | None:
        """The emotion in ``samples``; None when no model or no speech. Raises SerError on
        failure. ``encoded``: :meth:`encode` of these samples, done earlier (the model then
        only finishes it, with the profile as it is now)."""
        if not self._loaded():
            return None
        from ser_model import NoSpeechError

        profile = self.profile
        self.profile_clips = profile.count if profile is not None else None
        model = self._model
        try:
            if encoded is not None:
                result = model.predict_encoded(encoded, profile, learn=profile is not None)
            elif profile is None:
                return model.predict(samples, sample_rate)
            else:
                result = model.predict(samples, sample_rate, profile=profile, learn=True)
        except NoSpeechError:
            return None
        if profile is not None:
            self._save_profile()
        return result

    def _save_profile(self) -> None:
        try:
            self._profiles.save(self.profile)
        except OSError as err:
            if not self._save_failed:  # say it once; adaptation goes on in memory
                self._notices.append(f"cannot save the voice profile {self._profiles.path}: "
                                     f"{err.strerror or err}")
            self._save_failed = True

    def take_notices(self) -> list[str]:
        """Messages for the user since the last call (profile set aside, cannot save, ...)."""
        out, self._notices = self._notices, []
        return out

    def predict_windows(self, samples: np.ndarray, sample_rate: int, *,
                        window_s: float = WINDOW_S) -> list[EmotionWindow]:
        """The emotion in each consecutive ``window_s`` window of ``samples`` (each window
        is judged on its own; no speech gives a window without emotion). Raises SerError.
        ``profile_clips`` is then the count before the first window."""
        from ser_model.windows import window_bounds

        before = self.profile.count if self.profile is not None else None
        win = max(1, int(round(window_s * sample_rate)))  # consecutive windows; a remainder under half joins the last
        windows = [EmotionWindow(start / sample_rate, end / sample_rate,
                                 self.predict(samples[start:end], sample_rate))
                   for start, end in window_bounds(len(samples), win, win, join_below=win // 2)]
        self.profile_clips = before
        return windows


def combine(windows: Sequence[EmotionWindow]) -> EmotionResult | None:
    """One emotion for a long utterance: the duration-weighted mean of the windows'
    probabilities (windows without speech left out); None when no window has speech."""
    voiced = [w for w in windows if w.emotion is not None]
    if not voiced:
        return None
    total: dict[str, float] = {}
    weight = 0.0
    for w in voiced:
        d = max(w.end_s - w.start_s, 1e-6)
        weight += d
        for label, p in w.emotion.probs.items():  # type: ignore[union-attr]
            total[label] = total.get(label, 0.0) + d * float(p)
    probs = {label: p / weight for label, p in total.items()}
    label = max(probs, key=probs.__getitem__)
    first = voiced[0].emotion
    assert first is not None
    return EmotionResult(label=label, confidence=probs[label], probs=probs,
                         model_version=first.model_version,
                         seconds=sum(float(w.emotion.seconds) for w in voiced))  # type: ignore[union-attr]


def check_bundle(name_or_path: str) -> str | None:
    """Why the bundle ``name_or_path`` cannot be used (one line naming it), or None when fine.

    Checks what can be checked without TensorFlow, synchronously: the folder exists, its
    ``config.json`` is valid and the weights' SHA-256 matches it. A model the user named
    explicitly that fails here is a set-up error, not something to degrade from silently.
    """
    from ser_model.bundle import load_bundle_config, resolve_bundle
    from ser_model.errors import BundleError

    try:
        load_bundle_config(resolve_bundle(name_or_path))
    except BundleError as err:
        reason = one_line(err)
        return reason if str(name_or_path) in reason else f"{name_or_path}: {reason}"
    return None


def make_recognizer(config: AssistantConfig) -> EmotionEngine:
    """Start loading the emotion model chosen in ``config`` (None: the shipped default)."""
    path = config.emotion.model
    profiles = None
    if config.emotion.adapt:
        from assistant.profiles import ProfileStore

        profiles = ProfileStore.for_user(config.emotion.user)

    def load():
        from ser_model import EmotionRecognizer

        return EmotionRecognizer.load(path)

    return EmotionEngine(load, profiles=profiles)
