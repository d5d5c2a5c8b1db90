"""The result of one emotion prediction (lightweight: no TensorFlow import)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EmotionResult:
    """What the emotion model heard in one utterance."""

    label: str
    """The most probable label, one of the model's labels."""
    confidence: float
    """Probability of ``label``, in [0, 1]."""
    probs: Mapping[str, float] = field(default_factory=dict)
    """Probability per label, summing to 1, in the model's label order."""
    model_version: str = ""
    """Name and version of the bundle that produced this result, e.g. ``ser-crnn-v1``."""
    seconds: float = 0.0
    """Wall-clock time the prediction took, features included."""

    def to_dict(self) -> dict:
        """A JSON-ready dict: label, confidence, probs (rounded to 4 places), model_version."""
        return {
            "label": self.label,
            "confidence": round(float(self.confidence), 4),
            "probs": {k: round(float(v), 4) for k, v in self.probs.items()},
            "model_version": self.model_version,
        }
