"""Corpus file-name parsers, recursive scanning, and the ``ser-model corpus`` summary.

Public API (binding, see docs/CONTRACTS.md)::

    AUDIO_EXTENSIONS: frozenset[str]                  # ".wav", ".flac", ... (lower case, with dot)
    CORPORA: tuple[str, ...]                          # ("ravdess", "tess", "crema-d", "savee")
    Clip(path, corpus, label, speaker, sex, original_label)          # frozen dataclass
    CorpusScan(clips: tuple[Clip, ...], unparsed: tuple[Path, ...])  # frozen dataclass
    parse_path(path: str | Path) -> Clip | None       # None: no parser knows the name
    scan(root: str | Path) -> CorpusScan              # recursive, sorted by path
    summarize(scan: CorpusScan) -> dict               # JSON-serialisable counts (see below)
    format_summary(summary: dict) -> rich.console.Group   # print with rich.print / Console.print

``summarize`` returns::

    {"n_clips": int,
     "corpora": {corpus: n},                  # only corpora present, in CORPORA order
     "labels": {label: n},                    # every label of LABELS (0 when absent), LABELS order
     "corpus_labels": {corpus: {label: n}},   # per corpus, LABELS order
     "speakers": {speaker: n},                # sorted by speaker id
     "speaker_sex": {speaker: "male" | "female" | None},
     "sexes": {"male": n, "female": n, "unknown": n},
     "n_unparsed": int,
     "unparsed": [str, ...]}                  # the unparsed paths, as given by scan

File-name rules (case-insensitive; any extension in ``AUDIO_EXTENSIONS``):

- RAVDESS ``MM-VV-EE-II-SS-RR-AA``: modality 01 (audio-video) or 03 (audio only); 02 is
  video-only (no sound) and is not parsed. Vocal channel 01 speech or 02 song. Emotion 01..08
  (02 calm -> neutral). Actor 01..24, odd male, even female. Speaker ``ravdess:AA``.
- TESS ``OAF_word_emotion`` / ``YAF_word_emotion`` (also the distributed typo ``OA_bite_neutral``
  -> OAF). Emotions angry, disgust, fear (-> fearful), happy, neutral, ps (-> surprised), sad;
  the long forms some copies use (fearful, pleasant_surprise, surprised ...) are accepted too.
  Both speakers are female. Speaker ``tess:OAF``. The folder layout does not matter.
- CREMA-D ``AAAA_SSS_EEE_LL``: actor 1001..1091, one of the 12 sentence codes, emotion
  ANG/DIS/FEA/HAP/NEU/SAD, level LO/MD/HI/XX (X and unknown levels tolerated). Sex from the
  corpus's ``VideoDemographics.csv`` when one is found in the file's folder or any parent
  (``scan`` also looks under the scan root), else from the published list of the 43 female
  actors (the corpus has 48 male, 43 female). Speaker ``crema-d:AAAA``.
- SAVEE ``DC_a01`` (Kaggle layout) or ``DC/a01`` (original layout, speaker from the folder):
  speakers DC, JE, JK, KL (all male), emotion a, d, f, h, n, sa, su. Speaker ``savee:DC``.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ser_model.labels import LABELS

__all__ = [
    "AUDIO_EXTENSIONS",
    "CORPORA",
    "Clip",
    "CorpusScan",
    "format_summary",
    "parse_path",
    "scan",
    "summarize",
]

#: Lower-case file suffixes (with the dot) that ``scan`` treats as audio.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc",
        ".m4a", ".aac", ".wma", ".au", ".snd", ".caf", ".w64", ".rf64",
    }
)  # fmt: skip

#: The corpora the parsers know, in report order.
CORPORA: tuple[str, ...] = ("ravdess", "tess", "crema-d", "savee")


@dataclass(frozen=True)
class Clip:
    """One labelled corpus file."""

    path: Path
    """The audio file."""
    corpus: str
    """"ravdess" | "tess" | "crema-d" | "savee"."""
    label: str
    """One of ``LABELS``."""
    speaker: str
    """Corpus-qualified speaker id, unique across corpora: "ravdess:01", "tess:OAF" ..."""
    sex: str | None
    """"male" | "female" | None (unknown)."""
    original_label: str
    """The corpus's own emotion code or word: "calm", "ps", "ANG", "sa" ..."""


@dataclass(frozen=True)
class CorpusScan:
    """What ``scan`` found under a folder."""

    clips: tuple[Clip, ...]
    """Parsed clips, sorted by path."""
    unparsed: tuple[Path, ...]
    """Audio files whose names no parser knows, sorted."""


# --------------------------------------------------------------------------- RAVDESS

_RAVDESS_RE = re.compile(r"^(0[13])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d{2})$")
_RAVDESS_EMOTIONS = {
    "01": ("neutral", "neutral"),
    "02": ("neutral", "calm"),
    "03": ("happy", "happy"),
    "04": ("sad", "sad"),
    "05": ("angry", "angry"),
    "06": ("fearful", "fearful"),
    "07": ("disgust", "disgust"),
    "08": ("surprised", "surprised"),
}


def _parse_ravdess(path: Path, stem: str) -> Clip | None:
    m = _RAVDESS_RE.match(stem)
    if not m:
        return None
    actor = int(m.group(7))
    if not 1 <= actor <= 24:
        return None
    label, original = _RAVDESS_EMOTIONS[m.group(3)]
    return Clip(
        path=path,
        corpus="ravdess",
        label=label,
        speaker=f"ravdess:{actor:02d}",
        sex="male" if actor % 2 else "female",
        original_label=original,
    )


# --------------------------------------------------------------------------- TESS

_TESS_RE = re.compile(r"^(OAF|YAF|OA|YA)_([A-Za-z]+)_([A-Za-z_]+)$", re.IGNORECASE)
_TESS_EMOTIONS = {
    "angry": "angry",
    "anger": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fearful",
    "fearful": "fearful",
    "happy": "happy",
    "happiness": "happy",
    "neutral": "neutral",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
    "surprise": "surprised",
    "surprised": "surprised",
    "sad": "sad",
    "sadness": "sad",
}


def _parse_tess(path: Path, stem: str) -> Clip | None:
    m = _TESS_RE.match(stem)
    if not m:
        return None
    emotion = m.group(3).lower()
    label = _TESS_EMOTIONS.get(emotion)
    if label is None:
        return None
    speaker = m.group(1).upper()
    speaker = {"OA": "OAF", "YA": "YAF"}.get(speaker, speaker)
    return Clip(
        path=path,
        corpus="tess",
        label=label,
        speaker=f"tess:{speaker}",
        sex="female",
        original_label=emotion,
    )


# --------------------------------------------------------------------------- CREMA-D

_CREMA_SENTENCES = "DFA|IEO|IOM|ITH|ITS|IWL|IWW|MTI|TAI|TIE|TSI|WSI"
_CREMA_RE = re.compile(
    rf"^(1\d{{3}})_({_CREMA_SENTENCES})_(ANG|DIS|FEA|HAP|NEU|SAD)_([A-Z]{{1,2}})$", re.IGNORECASE
)
_CREMA_EMOTIONS = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
#: Female CREMA-D actors (43 of 91), the list in common use; VideoDemographics.csv wins over it.
_CREMA_FEMALE = frozenset(
    {
        1002, 1003, 1004, 1006, 1007, 1008, 1009, 1010, 1012, 1013, 1018, 1020, 1021, 1024,
        1025, 1028, 1029, 1030, 1037, 1043, 1046, 1047, 1049, 1052, 1053, 1054, 1055, 1056,
        1058, 1060, 1061, 1063, 1072, 1073, 1074, 1075, 1076, 1078, 1079, 1082, 1084, 1089,
        1091,
    }
)  # fmt: skip
_DEMOGRAPHICS = "VideoDemographics.csv"


@functools.lru_cache(maxsize=64)
def _read_demographics(csv_path: str) -> dict[int, str] | None:
    """ActorID -> "male"/"female" from CREMA-D's VideoDemographics.csv (None if unreadable)."""
    sexes: dict[int, str] = {}
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                actor, sex = row.get("actorid", ""), row.get("sex", "").lower()
                if actor.isdigit() and sex in ("male", "female"):
                    sexes[int(actor)] = sex
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return sexes or None


@functools.lru_cache(maxsize=4096)
def _find_demographics(folder: str) -> str | None:
    """Nearest VideoDemographics.csv in ``folder`` or a parent (or a sibling folder's root)."""
    here = Path(folder)
    for d in (here, *here.parents):
        candidate = d / _DEMOGRAPHICS
        if candidate.is_file():
            return str(candidate)
    return None


def _crema_sex(path: Path, actor: int, demographics: str | None = None) -> str | None:
    csv_path = demographics or _find_demographics(str(path.parent.absolute()))
    if csv_path is not None:
        table = _read_demographics(csv_path)
        if table is not None and actor in table:
            return table[actor]
    if 1001 <= actor <= 1091:
        return "female" if actor in _CREMA_FEMALE else "male"
    return None


def _parse_crema(path: Path, stem: str, demographics: str | None = None) -> Clip | None:
    m = _CREMA_RE.match(stem)
    if not m:
        return None
    actor = int(m.group(1))
    if not 1001 <= actor <= 1091:
        return None
    code = m.group(3).upper()
    return Clip(
        path=path,
        corpus="crema-d",
        label=_CREMA_EMOTIONS[code],
        speaker=f"crema-d:{actor}",
        sex=_crema_sex(path, actor, demographics),
        original_label=code,
    )


# --------------------------------------------------------------------------- SAVEE

_SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")
_SAVEE_CODES = "sa|su|a|d|f|h|n"
_SAVEE_KAGGLE_RE = re.compile(rf"^(DC|JE|JK|KL)_({_SAVEE_CODES})(\d{{1,2}})$", re.IGNORECASE)
_SAVEE_ORIGINAL_RE = re.compile(rf"^({_SAVEE_CODES})(\d{{1,2}})$", re.IGNORECASE)
_SAVEE_EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}


def _parse_savee(path: Path, stem: str) -> Clip | None:
    m = _SAVEE_KAGGLE_RE.match(stem)
    if m:
        speaker, code = m.group(1).upper(), m.group(2).lower()
    else:
        m = _SAVEE_ORIGINAL_RE.match(stem)
        if not m or path.parent.name.upper() not in _SAVEE_SPEAKERS:
            return None
        speaker, code = path.parent.name.upper(), m.group(1).lower()
    return Clip(
        path=path,
        corpus="savee",
        label=_SAVEE_EMOTIONS[code],
        speaker=f"savee:{speaker}",
        sex="male",
        original_label=code,
    )


# --------------------------------------------------------------------------- public API


def _parse(path: Path, demographics: str | None = None) -> Clip | None:
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        return None
    stem = path.stem
    return (
        _parse_ravdess(path, stem)
        or _parse_tess(path, stem)
        or _parse_crema(path, stem, demographics)
        or _parse_savee(path, stem)
    )


def parse_path(path: str | Path) -> Clip | None:
    """Parse a corpus file name into a labelled ``Clip``.

    Args:
        path: file path; only its name (and, for SAVEE's original layout, its folder) is used,
            plus a CREMA-D ``VideoDemographics.csv`` in a parent folder if there is one.

    Returns:
        The ``Clip`` (its ``path`` is ``Path(path)`` as given), or None when the suffix is not
        in ``AUDIO_EXTENSIONS`` or no corpus's naming rule matches.
    """
    return _parse(Path(path))


def scan(root: str | Path) -> CorpusScan:
    """Find every audio file under ``root`` (recursively) and parse its name.

    Hidden files and folders (names starting with ".") are skipped, as are non-audio files.
    Audio files no parser knows are listed in ``unparsed`` rather than dropped silently.

    Args:
        root: a folder (or a single audio file).

    Returns:
        ``CorpusScan`` with clips and unparsed files sorted by path.

    Raises:
        FileNotFoundError: ``root`` does not exist.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no such file or folder: {root}")
    if root.is_file():
        files = [root]
        demographics = None
    else:
        files = []
        seen: set[str] = set()  # real paths of folders walked: a symlink loop ends here
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen:
                dirnames[:] = []
                continue
            seen.add(real)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            base = Path(dirpath)
            files.extend(
                base / name
                for name in filenames
                if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS
            )
        # A VideoDemographics.csv anywhere in the scanned tree applies to CREMA-D files that
        # have none of their own above them (Kaggle ships it beside AudioWAV/).
        found = sorted(root.rglob(_DEMOGRAPHICS)) if any(
            _CREMA_RE.match(f.stem) for f in files
        ) else []
        demographics = str(found[0]) if found else None
    clips: list[Clip] = []
    unparsed: list[Path] = []
    for f in sorted(files):
        own = None
        if demographics is not None and _CREMA_RE.match(f.stem):
            own = _find_demographics(str(f.parent.absolute())) or demographics
        clip = _parse(f, own)
        if clip is None:
            unparsed.append(f)
        else:
            clips.append(clip)
    return CorpusScan(clips=tuple(clips), unparsed=tuple(unparsed))


def summarize(scan: CorpusScan) -> dict[str, Any]:
    """Counts per corpus, label, speaker and sex, plus the unparsed files (JSON-serialisable).

    Args:
        scan: the result of ``scan``.

    Returns:
        dict with the keys documented at the top of this module.
    """
    clips = scan.clips
    corpus_counts = Counter(c.corpus for c in clips)
    label_counts = Counter(c.label for c in clips)
    speakers = Counter(c.speaker for c in clips)
    speaker_sex = {c.speaker: c.sex for c in clips}
    corpus_labels: dict[str, dict[str, int]] = {}
    for corpus in [*CORPORA, *sorted(set(corpus_counts) - set(CORPORA))]:
        if corpus_counts.get(corpus):
            per = Counter(c.label for c in clips if c.corpus == corpus)
            corpus_labels[corpus] = {label: per.get(label, 0) for label in LABELS}
    sexes = Counter(speaker_sex[c.speaker] or "unknown" for c in clips)
    return {
        "n_clips": len(clips),
        "corpora": {k: corpus_counts[k] for k in corpus_labels},
        "labels": {label: label_counts.get(label, 0) for label in LABELS},
        "corpus_labels": corpus_labels,
        "speakers": {s: speakers[s] for s in sorted(speakers)},
        "speaker_sex": {s: speaker_sex[s] for s in sorted(speakers)},
        "sexes": {k: sexes.get(k, 0) for k in ("male", "female", "unknown")},
        "n_unparsed": len(scan.unparsed),
        "unparsed": [str(p) for p in scan.unparsed],
    }


def format_summary(summary: dict[str, Any], *, max_unparsed: int = 20) -> Any:
    """A rich renderable (``rich.console.Group``) of a ``summarize`` dict, for the CLI.

    Shows a corpus x label table with totals, a speaker table (clips and sex per speaker,
    grouped per corpus), and the unparsed file names (the first ``max_unparsed``).

    Args:
        summary: the dict from ``summarize``.
        max_unparsed: how many unparsed names to list before "... and N more".

    Returns:
        ``rich.console.Group``; print it with ``rich.console.Console().print(...)``.
    """
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    table = Table(title=f"{summary['n_clips']} labelled clips", show_footer=True)
    table.add_column("corpus", footer="total")
    for label in LABELS:
        table.add_column(label, justify="right", footer=str(summary["labels"].get(label, 0)))
    table.add_column("total", justify="right", footer=str(summary["n_clips"]))
    for corpus, per in summary["corpus_labels"].items():
        table.add_row(
            corpus,
            *(str(per.get(label, 0)) for label in LABELS),
            str(summary["corpora"][corpus]),
        )
    parts.append(table)

    speakers = Table(title=f"{len(summary['speakers'])} speakers")
    speakers.add_column("corpus")
    speakers.add_column("speakers", justify="right")
    speakers.add_column("male", justify="right")
    speakers.add_column("female", justify="right")
    speakers.add_column("clips per speaker (min-max)", justify="right")
    for corpus in summary["corpus_labels"]:
        ids = [s for s in summary["speakers"] if s.split(":", 1)[0] == corpus]
        counts = [summary["speakers"][s] for s in ids]
        sex = Counter(summary["speaker_sex"][s] for s in ids)
        speakers.add_row(
            corpus,
            str(len(ids)),
            str(sex.get("male", 0)),
            str(sex.get("female", 0)),
            f"{min(counts)}-{max(counts)}" if counts else "-",
        )
    parts.append(speakers)

    n_unparsed = summary["n_unparsed"]
    if n_unparsed:
        lines = Text(f"{n_unparsed} audio file(s) with names no parser knows:\n", style="yellow")
        for name in summary["unparsed"][:max_unparsed]:
            lines.append(f"  {name}\n")
        if n_unparsed > max_unparsed:
            lines.append(f"  ... and {n_unparsed - max_unparsed} more\n")
        parts.append(lines)
    else:
        parts.append(Text("every audio file was recognised", style="green"))
    return Group(*parts)
