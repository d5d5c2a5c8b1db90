"""Speech emotion recognition: corpora, features, augmentation, models, evaluation, inference.

The package knows nothing of the assistant. Heavy dependencies (TensorFlow, librosa) are
imported lazily, so ``import ser_model`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ser_model.errors import AudioLoadError, BundleError, NoSpeechError, ParameterError, SerError
from ser_model.labels import LABELS
from ser_model.result import EmotionResult
from ser_model.tf_quiet import quiet_environment

# Before anything can import TensorFlow (Keras, the keras backend, training): keep its native
# logging off the user's stderr. Only environment variables; nothing heavy is imported.
quiet_environment()

__version__ = "0.1.0"

__all__ = [
    "LABELS",
    "AudioLoadError",
    "BundleError",
    "EmotionRecognizer",
    "EmotionResult",
    "NoSpeechError",
    "ParameterError",
    "SerError",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from ser_model.recognizer import EmotionRecognizer


def __getattr__(name: str) -> Any:
    if name == "EmotionRecognizer":
        from ser_model.recognizer import EmotionRecognizer

        return EmotionRecognizer
    raise AttributeError(f"module 'ser_model' has no attribute {name!r}")
