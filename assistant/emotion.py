"""The emotion model, loaded in a background thread (TensorFlow's import is slow).

The assistant uses only ``ser_model.EmotionRecognizer.load(path)`` and ``.predict(samples,
sample_rate)``. :func:`make_recognizer` returns an :class:`EmotionEngine` whose loading starts
at once; the first :meth:`EmotionEngine.predict` waits for it. When the model cannot be loaded
the conversation goes on without emotion (every turn uncertain) and the reason is reported.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

import numpy as np

from assistant.config import AssistantConfig
from ser_model.result import EmotionResult


class EmotionEngine:
    """Background-loaded recognizer; ``predict`` returns None when there is no emotion."""

    def __init__(self, loader: Callable[[], Any]) -> None:
        self._loader = loader
        self._model: Any = None
        self.error: Optional[str] = None
        """One-line reason the model is unavailable, once loading failed."""
        self.load_seconds: Optional[float] = None
        self.model_version: Optional[str] = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._load, name="ser-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            self._model = self._loader()
            self.model_version = getattr(self._model, "model_version", None)
        except BaseException as err:  # report any failure; the session goes on without emotion
            lines = str(err).strip().splitlines()
            self.error = f"emotion model unavailable: {lines[0] if lines else type(err).__name__}"
        finally:
            self.load_seconds = time.perf_counter() - t0
            self._ready.set()

    @property
    def ready(self) -> bool:
        """True once loading has finished (successfully or not)."""
        return self._ready.is_set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait for loading; True when a model is available."""
        self._ready.wait(timeout)
        return self._model is not None

    def predict(self, samples: np.ndarray, sample_rate: int) -> Optional[EmotionResult]:
        """The emotion in ``samples``; None when no model or no speech. Raises SerError on failure."""
        if not self.wait():
            return None
        from ser_model import NoSpeechError

        try:
            return self._model.predict(samples, sample_rate)
        except NoSpeechError:
            return None


def make_recognizer(config: AssistantConfig) -> EmotionEngine:
    """Start loading the emotion model chosen in ``config`` (None: the shipped default)."""
    path = config.emotion.model

    def load():
        from ser_model import EmotionRecognizer

        return EmotionRecognizer.load(path)

    return EmotionEngine(load)
