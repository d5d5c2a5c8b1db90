"""Score a model bundle on a folder of labelled clips: ``ser-model evaluate DIR``.

The true label comes from each file's name (``ser_model.corpora.parse_path``: RAVDESS, TESS,
CREMA-D or SAVEE, any audio extension). Reports accuracy, UAR (unweighted average recall =
balanced accuracy over the true labels present), macro-F1, per-class recall and the confusion
matrix. Clips the model cannot be scored on are counted, not crashed on: file names no parser
knows, unreadable files, silence, and true labels the model does not have (e.g. "surprised"
for a model trained on CREMA-D).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser_model.errors import AudioLoadError, NoSpeechError, ParameterError


@dataclass(frozen=True)
class EvaluationReport:
    """How a model scored on a folder of labelled clips."""

    model_version: str
    """The bundle that was scored."""
    root: str
    """The folder that was walked."""
    labels: tuple[str, ...]
    """Row/column order of ``confusion`` (the model's labels)."""
    n: int
    """Clips scored."""
    accuracy: float
    """Fraction of scored clips predicted correctly (0 when n == 0)."""
    uar: float
    """Unweighted average recall over the true labels present (balanced accuracy)."""
    macro_f1: float
    """Mean F1 over the labels present in the truth or the predictions."""
    per_class_recall: dict[str, float]
    """Recall per true label present."""
    support: dict[str, int]
    """Scored clips per true label."""
    confusion: tuple[tuple[int, ...], ...]
    """Counts, rows = true label, columns = predicted label, both in ``labels`` order."""
    skipped: dict[str, int]
    """Clips not scored, by reason: unparsed, unreadable, no_speech, label_not_in_model."""
    labels_not_in_model: dict[str, int] = field(default_factory=dict)
    """True labels found in DIR that the model lacks, with their clip counts."""
    errors: tuple[str, ...] = ()
    """One line per unreadable file (``path: reason``)."""
    adapt: int = 0
    """K of the adapted protocol (each clip scored with a profile of K other clips of its speaker); 0: unadapted."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (floats rounded to 4 places)."""
        return {
            "model_version": self.model_version,
            "root": self.root,
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "uar": round(self.uar, 4),
            "macro_f1": round(self.macro_f1, 4),
            "per_class_recall": {k: round(v, 4) for k, v in self.per_class_recall.items()},
            "support": dict(self.support),
            "labels": list(self.labels),
            "confusion": [list(row) for row in self.confusion],
            "skipped": dict(self.skipped),
            "labels_not_in_model": dict(self.labels_not_in_model),
            "errors": list(self.errors),
            **({"adapt": self.adapt} if self.adapt else {}),
        }


def classification_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, UAR, macro-F1, per-class recall, support and confusion matrix.

    ``labels`` fixes the confusion matrix order and must hold every true and predicted label.
    UAR averages recall over the labels present in ``y_true``; macro-F1 averages F1 over the
    labels present in ``y_true`` or ``y_pred`` (scikit-learn's convention).
    """
    if len(y_true) != len(y_pred):
        raise ParameterError(f"y_true and y_pred differ in length ({len(y_true)} != {len(y_pred)})")
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted((set(y_true) | set(y_pred)) - set(index))
    if unknown:
        raise ParameterError(f"labels missing from the label list: {unknown}")
    k = len(labels)
    confusion = [[0] * k for _ in range(k)]
    for t, p in zip(y_true, y_pred):
        confusion[index[t]][index[p]] += 1
    n = len(y_true)
    correct = sum(confusion[i][i] for i in range(k))
    support = {label: sum(confusion[index[label]]) for label in labels if sum(confusion[index[label]])}
    recall = {label: confusion[index[label]][index[label]] / s for label, s in support.items()}
    present = [label for label in labels if label in support or any(confusion[r][index[label]] for r in range(k))]
    f1s = []
    for label in present:
        i = index[label]
        tp = confusion[i][i]
        predicted = sum(confusion[r][i] for r in range(k))
        actual = sum(confusion[i])
        denom = predicted + actual
        f1s.append(2 * tp / denom if denom else 0.0)
    return {
        "n": n,
        "accuracy": correct / n if n else 0.0,
        "uar": sum(recall.values()) / len(recall) if recall else 0.0,
        "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0,
        "per_class_recall": recall,
        "support": support,
        "confusion": tuple(tuple(row) for row in confusion),
    }


def adaptation_profile(recognizer: Any, paths: list[Path], cache: dict[Path, Any] | None = None) -> Any:
    """A voice profile of the clips at ``paths`` (audio only: no label is given or read).

    Unreadable or silent clips are left out. ``cache`` maps path -> utterance vector, so each
    clip's features are computed once per evaluation.
    """
    from ser_model.audio import is_silent, load_audio

    cache = {} if cache is None else cache
    profile = recognizer.new_profile()
    for path in paths:
        if path not in cache:
            try:
                y = load_audio(path, sample_rate=recognizer.sample_rate)
            except AudioLoadError:
                cache[path] = None
                continue
            cache[path] = None if y.size == 0 or is_silent(y, sample_rate=recognizer.sample_rate) \
                else recognizer.utterance_vector(y)
        if cache[path] is not None:
            profile.add(cache[path])
    return profile


def evaluate_dir(
    root: str | Path,
    *,
    model: str | Path | None = None,
    recognizer: Any = None,
    progress: Callable[[int, int], None] | None = None,
    adapt: int = 0,
    seed: int = 0,
) -> EvaluationReport:
    """Walk ``root`` (a folder, recursively, or one file), predict every labelled clip, and score the predictions.

    ``model``: bundle name or path (default: the shipped default), unless a loaded
    ``recognizer`` is given. ``progress(done, total)`` is called after each clip.
    ``adapt`` K > 0: each clip is scored with a voice profile built from K other clips of the
    same speaker (speaker from the corpus file name, drawn with ``seed``; labels never read; fewer
    when the speaker has fewer); the model must support profiles.
    Raises AudioLoadError if ``root`` does not exist, BundleError for a bad bundle.
    """
    from ser_model.corpora import scan

    root = Path(root)
    if not root.exists():
        raise AudioLoadError(root, "no such file or folder")
    if recognizer is None:
        from ser_model.recognizer import EmotionRecognizer

        recognizer = EmotionRecognizer.load(model)
    found = scan(root)
    if not found.clips:
        from ser_model.errors import SerError

        what = f"{len(found.unparsed)} audio file(s), none with a corpus name" if found.unparsed else "no audio files"
        raise SerError(f"{root}: no labelled clips to evaluate ({what}; RAVDESS, TESS, CREMA-D or SAVEE names)")
    model_labels = set(recognizer.labels)
    missing = Counter(c.label for c in found.clips if c.label not in model_labels)
    clips = [c for c in found.clips if c.label in model_labels]
    if not clips:
        raise ParameterError(
            f"{root}: no clip to score: {len(found.clips)} labelled, {len(found.unparsed)} with names no corpus "
            f"parser knows, {sum(missing.values())} with labels the model lacks (names must follow RAVDESS, "
            "TESS, CREMA-D or SAVEE)")
    skipped = Counter(unparsed=len(found.unparsed), label_not_in_model=sum(missing.values()))
    skipped.update(unreadable=0, no_speech=0)
    y_true: list[str] = []
    y_pred: list[str] = []
    errors: list[str] = []
    if isinstance(adapt, bool) or not isinstance(adapt, int) or adapt < 0:
        raise ParameterError(f"adapt must be a non-negative integer, got {adapt!r}")
    if adapt and not getattr(recognizer, "supports_profiles", False):
        raise ParameterError(f"{recognizer.model_version} does not support voice profiles (--adapt needs ser-v3)")
    rng = np.random.default_rng(seed)
    by_speaker: dict[str, list[Path]] = {}
    for c in clips:
        by_speaker.setdefault(c.speaker, []).append(Path(c.path))
    vector_cache: dict[Path, Any] = {}
    for done, clip in enumerate(clips, 1):
        try:
            profile = None
            if adapt:
                others = [p for p in by_speaker[clip.speaker] if p != Path(clip.path)]
                if len(others) > adapt:
                    others = [others[i] for i in sorted(rng.choice(len(others), size=adapt, replace=False))]
                profile = adaptation_profile(recognizer, others, vector_cache)
            result = recognizer.predict_file(clip.path, profile)
        except AudioLoadError as err:
            skipped["unreadable"] += 1
            errors.append(str(err))
        except NoSpeechError:
            skipped["no_speech"] += 1
        else:
            y_true.append(clip.label)
            y_pred.append(result.label)
        if progress is not None:
            progress(done, len(clips))
    if not y_true:
        raise ParameterError(f"{root}: none of the {len(clips)} clips could be scored "
                             f"({skipped['unreadable']} unreadable, {skipped['no_speech']} without speech)")
    metrics = classification_metrics(y_true, y_pred, recognizer.labels)
    return EvaluationReport(
        adapt=adapt,
        model_version=recognizer.model_version,
        root=str(root),
        labels=tuple(recognizer.labels),
        n=metrics["n"],
        accuracy=metrics["accuracy"],
        uar=metrics["uar"],
        macro_f1=metrics["macro_f1"],
        per_class_recall=metrics["per_class_recall"],
        support=metrics["support"],
        confusion=metrics["confusion"],
        skipped={k: skipped[k] for k in ("unparsed", "unreadable", "no_speech", "label_not_in_model")},
        labels_not_in_model=dict(sorted(missing.items())),
        errors=tuple(errors),
    )


def format_report(report: EvaluationReport) -> Any:
    """A rich renderable of a report: headline metrics, per-class recall, confusion matrix."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    # Two short lines rather than one that wraps at 80 columns: what was scored, then the scores.
    head = Text.assemble(
        (f"{report.model_version}", "bold"),
        f" on {report.root}\n",
        f"n={report.n}  accuracy={report.accuracy:.3f}  ",
        (f"UAR={report.uar:.3f}", "bold"),
        f"  macro-F1={report.macro_f1:.3f}",
    )
    recall = Table(title="per-class recall")
    recall.add_column("label")
    recall.add_column("recall", justify="right")
    recall.add_column("clips", justify="right")
    for label in report.labels:
        if label in report.per_class_recall:
            recall.add_row(label, f"{report.per_class_recall[label]:.3f}", str(report.support[label]))
    confusion = Table(title="confusion (rows: true, columns: predicted)")
    confusion.add_column("true \\ pred")
    for label in report.labels:
        confusion.add_column(label, justify="right")  # whole names: seven fit in 80 columns
    for label, row in zip(report.labels, report.confusion):
        if label in report.support:
            confusion.add_row(label, *(str(v) for v in row))
    skipped = ", ".join(f"{k}={v}" for k, v in report.skipped.items())
    lines: list[Any] = [head, recall, confusion, Text(f"skipped: {skipped}")]
    if report.labels_not_in_model:
        lacking = ", ".join(f"{k} ({v} clips)" for k, v in report.labels_not_in_model.items())
        lines.append(Text(f"labels the model lacks (not scored): {lacking}"))
    for line in report.errors[:10]:
        lines.append(Text(f"unreadable: {line}", style="yellow"))
    if len(report.errors) > 10:
        lines.append(Text(f"... and {len(report.errors) - 10} more unreadable files", style="yellow"))
    return Group(*lines)
