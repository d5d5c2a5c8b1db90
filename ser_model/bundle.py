"""Model bundles: save, validate, and find them by name or path.

A bundle is a folder ``<name>-v<N>/`` holding ``model.keras`` (Keras native format, no
pickle), ``config.json`` (labels, sample rate, feature settings, normalisation, model
version, SHA-256 of the weights), ``metrics.json`` and ``MODEL_CARD.md``; see
docs/CONTRACTS.md. Bundles are looked up in the checkout's top-level ``models/`` folder and
in the installed package ``ser_model.bundled_models`` (pyproject maps ``models/`` there for
non-editable installs).

This module imports no TensorFlow at import time: only :func:`save_bundle` needs a model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ser_model
from ser_model.errors import BundleError

#: Name of the bundle :func:`resolve_bundle` returns when given no name (highest version).
DEFAULT_BUNDLE = "ser"

#: Environment variable that, when set, overrides :data:`DEFAULT_BUNDLE` (a name or a path).
DEFAULT_BUNDLE_ENV = "SER_MODEL_BUNDLE"

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
CARD_FILE = "MODEL_CARD.md"
WEIGHTS_FILE = "model.keras"

#: Keys every config.json must have, with the JSON type each must hold.
REQUIRED_KEYS: Mapping[str, type | tuple[type, ...]] = {
    "name": str,
    "version": int,
    "model_version": str,
    "labels": list,
    "sample_rate": int,
    "features": dict,
    "normalization": dict,
    "input": dict,
    "weights": str,
    "weights_sha256": str,
}

#: Input kinds the recognizer knows: a (frames, features) matrix or one pooled vector.
INPUT_KINDS = ("frames", "pooled", "utterance")

_VERSIONED = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)$")


@dataclass(frozen=True)
class BundleInfo:
    """One bundle found by :func:`list_bundles`."""

    path: Path
    """The bundle folder."""
    name: str
    """The folder name, e.g. ``ser-crnn-v1``."""
    model_version: str | None
    """``model_version`` from config.json; None when the bundle is invalid."""
    labels: tuple[str, ...]
    """Output labels in model order; empty when the bundle is invalid."""
    architecture: str | None
    """``architecture`` from config.json, when present."""
    source: str
    """Where it was found: ``"checkout"`` (models/) or ``"installed"`` (ser_model.bundled_models)."""
    problem: str | None = None
    """Why the bundle failed validation, or None when it is valid."""


def sha256_file(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _json_default(obj: Any) -> Any:
    """Make numpy scalars/arrays and paths JSON-serialisable (no other objects are accepted)."""
    if hasattr(obj, "tolist"):  # numpy arrays and numpy scalars
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict"):  # FeatureSettings and similar frozen dataclasses
        return obj.to_dict()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    text = json.dumps(data, indent=2, default=_json_default, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def validate_config(config: Mapping[str, Any], *, where: str = "config.json") -> None:
    """Check the keys and shapes of a bundle config; raise BundleError naming what is wrong."""
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise BundleError(f"{where}: missing key(s) {', '.join(missing)}")
    for key, kind in REQUIRED_KEYS.items():
        value = config[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BundleError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, got {value!r:.60}")
    labels = config["labels"]
    if not labels or not all(isinstance(x, str) and x for x in labels):
        raise BundleError(f"{where}: 'labels' must be a non-empty list of strings")
    if len(set(labels)) != len(labels):
        raise BundleError(f"{where}: 'labels' has duplicates: {labels}")
    if config["sample_rate"] <= 0:
        raise BundleError(f"{where}: 'sample_rate' must be positive, got {config['sample_rate']}")
    norm = config["normalization"]
    mean, std = norm.get("mean"), norm.get("std")
    if not isinstance(mean, list) or not isinstance(std, list) or len(mean) != len(std) or not mean:
        raise BundleError(f"{where}: 'normalization' needs equal-length non-empty 'mean' and 'std' lists")
    if any((not isinstance(s, (int, float))) or s <= 0 for s in std):
        raise BundleError(f"{where}: 'normalization.std' must be positive numbers")
    inp = config["input"]
    kind = inp.get("kind")
    if kind not in INPUT_KINDS:
        raise BundleError(f"{where}: 'input.kind' must be one of {INPUT_KINDS}, got {kind!r}")
    if kind == "frames":
        max_frames = inp.get("max_frames")
        if not isinstance(max_frames, int) or isinstance(max_frames, bool) or max_frames <= 0:
            raise BundleError(f"{where}: 'input.max_frames' must be a positive integer, got {max_frames!r}")
    if kind == "utterance":
        enc = config.get("encoder")
        if not isinstance(enc, dict) or not isinstance(enc.get("name"), str) \
                or not re.fullmatch(r"[0-9a-f]{64}", str(enc.get("sha256"))):
            raise BundleError(f"{where}: 'encoder' must name the encoder and the SHA-256 of its model.bin")
        if not isinstance(config.get("feature_id"), str) or not isinstance(config.get("prior"), dict):
            raise BundleError(f"{where}: an utterance bundle needs 'feature_id' and 'prior'")
    if not re.fullmatch(r"[0-9a-f]{64}", config["weights_sha256"]):
        raise BundleError(f"{where}: 'weights_sha256' is not a hex SHA-256 digest")
    weights = config["weights"]
    if Path(weights).name != weights:
        raise BundleError(f"{where}: 'weights' must be a file name inside the bundle, got {weights!r}")


def load_bundle_config(path: str | Path) -> dict[str, Any]:
    """Read and validate ``config.json`` of the bundle at ``path`` (a folder, or its config.json).

    Checks the required keys and that the SHA-256 of the weights file equals
    ``weights_sha256``. Raises :class:`BundleError` (one line, naming the path) otherwise.
    """
    folder = Path(path)
    if folder.name == CONFIG_FILE and folder.is_file():
        folder = folder.parent
    config_path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise BundleError(f"{folder}: not a model bundle (no such folder)")
    if not config_path.is_file():
        raise BundleError(f"{folder}: not a model bundle (no {CONFIG_FILE})")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise BundleError(f"{config_path}: cannot read: {err}") from err
    except json.JSONDecodeError as err:
        raise BundleError(f"{config_path}: not valid JSON: {err}") from err
    if not isinstance(config, dict):
        raise BundleError(f"{config_path}: must hold a JSON object")
    validate_config(config, where=str(config_path))
    weights_path = folder / config["weights"]
    if not weights_path.is_file():
        raise BundleError(f"{folder}: weights file {config['weights']} is missing")
    actual = sha256_file(weights_path)
    expected = config["weights_sha256"]
    if actual != expected:
        raise BundleError(
            f"{folder}: weights do not match config.json (expected {expected}, got {actual})"
        )
    return config


def save_bundle(
    out_dir: str | Path,
    *,
    model: Any,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
    card: str,
) -> Path:
    """Write a bundle folder ``out_dir`` (e.g. ``models/ser-crnn-v1``) and return its path.

    Writes ``model.keras`` (``model.save``), ``config.json`` (``config`` plus ``weights``,
    ``weights_sha256``, and ``created``/``model_version`` when absent), ``metrics.json`` and
    ``MODEL_CARD.md``. ``config["features"]`` may be a FeatureSettings (its ``to_dict()`` is
    stored). The folder is written next to its final place and then renamed, so a reader
    never sees half a bundle; an existing bundle at ``out_dir`` is replaced.
    """
    out_dir = Path(out_dir)
    full = dict(config)
    if "features" in full and hasattr(full["features"], "to_dict"):
        full["features"] = full["features"].to_dict()
    full.setdefault("created", datetime.now(UTC).isoformat(timespec="seconds"))
    if "name" in full and "version" in full:
        full.setdefault("model_version", f"{full['name']}-v{full['version']}")
    full["weights"] = WEIGHTS_FILE
    full["weights_sha256"] = "0" * 64  # placeholder so validation can run before saving
    # Round-trip through JSON first so numpy values become plain lists/numbers.
    full = json.loads(json.dumps(full, default=_json_default, allow_nan=False))
    validate_config(full, where=f"config for {out_dir}")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        weights = tmp / WEIGHTS_FILE
        model.save(str(weights))
        full["weights_sha256"] = sha256_file(weights)
        _write_json(tmp / CONFIG_FILE, full)
        _write_json(tmp / METRICS_FILE, metrics)
        (tmp / CARD_FILE).write_text(card if card.endswith("\n") else card + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            if old.exists():
                shutil.rmtree(old)
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out_dir


def update_metadata(
    folder: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    card: str | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """Rewrite a bundle's metadata without touching its weights; returns the folder.

    ``config`` replaces config.json and must keep the ``weights`` and ``weights_sha256`` the
    bundle has (checked against the weights file first); ``metrics`` replaces metrics.json,
    ``card`` MODEL_CARD.md, and ``files`` (name -> text) writes further text files such as
    ``recipe.toml``. Each file is written beside its place and renamed over it.
    """
    folder = Path(folder)
    current = load_bundle_config(folder)  # the weights match their recorded SHA-256
    writes: dict[str, str] = {}
    if config is not None:
        full = json.loads(json.dumps(dict(config), default=_json_default, allow_nan=False))
        for key in ("weights", "weights_sha256"):
            if full.get(key) != current[key]:
                raise BundleError(f"{folder}: update_metadata may not change {key!r}")
        validate_config(full, where=f"config for {folder}")
        writes[CONFIG_FILE] = json.dumps(full, indent=2, allow_nan=False) + "\n"
    if metrics is not None:
        writes[METRICS_FILE] = json.dumps(metrics, indent=2, default=_json_default, allow_nan=False) + "\n"
    if card is not None:
        writes[CARD_FILE] = card if card.endswith("\n") else card + "\n"
    for name, text in (files or {}).items():
        if Path(name).name != name or name in (current["weights"], CONFIG_FILE, METRICS_FILE, CARD_FILE):
            raise BundleError(f"{folder}: {name!r} is not a further metadata file name")
        writes[name] = text
    for name, text in writes.items():
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, folder / name)
    return folder


def checkout_models_dir() -> Path:
    """The checkout's top-level ``models/`` folder (it may not exist in an installed copy)."""
    return Path(ser_model.__file__).resolve().parents[1] / "models"


def installed_models_dir() -> Path | None:
    """The folder of the installed ``ser_model.bundled_models`` package, or None when absent.

    ``models/`` has no ``__init__.py``, so the installed package is a namespace package:
    ``importlib.resources.files`` gives a ``MultiplexedPath`` whose ``str`` is not a path, so
    the folder is read from the import system's search locations instead.
    """
    try:
        spec = importlib.util.find_spec("ser_model.bundled_models")
    except (ModuleNotFoundError, ValueError):  # editable installs and plain checkouts have none
        return None
    if spec is None:
        return None
    for location in spec.submodule_search_locations or ():
        path = Path(location)
        if path.is_dir():
            return path
    return None


def search_roots() -> list[tuple[str, Path]]:
    """Where bundles are looked for, in order: ``[(source, folder), ...]`` (existing folders only)."""
    roots: list[tuple[str, Path]] = []
    checkout = checkout_models_dir()
    if checkout.is_dir():
        roots.append(("checkout", checkout))
    installed = installed_models_dir()
    if installed is not None and all(installed.resolve() != p.resolve() for _, p in roots):
        roots.append(("installed", installed))
    return roots


def _candidates() -> list[tuple[str, Path]]:
    """Every folder with a config.json directly under a search root."""
    found: list[tuple[str, Path]] = []
    for source, root in search_roots():
        for child in sorted(root.iterdir()):
            if child.is_dir() and not child.name.startswith(".") and (child / CONFIG_FILE).is_file():
                found.append((source, child))
    return found


def _version_of(folder_name: str, base: str) -> int | None:
    match = _VERSIONED.match(folder_name)
    if match and match.group("name") == base:
        return int(match.group("version"))
    return None


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.startswith((".", "~"))


def resolve_bundle(name_or_path: str | Path | None = None) -> Path:
    """Find a bundle folder by path or by name and return it (not yet validated).

    - ``None``: the default bundle, ``$SER_MODEL_BUNDLE`` if set, else :data:`DEFAULT_BUNDLE`.
    - an existing folder (or any ``Path``, or text with a ``/``): that folder.
    - ``"ser-crnn-v1"``: that folder in ``models/`` or the installed bundles.
    - ``"ser-crnn"``: its highest version ``ser-crnn-v<N>``.

    Raises :class:`BundleError` when nothing matches.
    """
    if name_or_path is None:
        env = os.environ.get(DEFAULT_BUNDLE_ENV, "").strip()
        if env:
            return resolve_bundle(env)
        try:
            return _resolve_name(DEFAULT_BUNDLE)
        except BundleError as err:
            raise BundleError(
                f"default model bundle {DEFAULT_BUNDLE!r} not found ({err}); "
                f"train one with `ser-model train` or pass --model PATH"
            ) from err
    if isinstance(name_or_path, Path) or _looks_like_path(str(name_or_path)):
        folder = Path(name_or_path).expanduser()
        if not folder.is_dir():
            raise BundleError(f"{folder}: not a model bundle (no such folder)")
        return folder
    text = str(name_or_path)
    if Path(text).is_dir() and (Path(text) / CONFIG_FILE).is_file():
        return Path(text)
    return _resolve_name(text)


def _resolve_name(name: str) -> Path:
    candidates = _candidates()
    for _, folder in candidates:
        if folder.name == name:
            return folder
    versions = [(v, folder) for _, folder in candidates if (v := _version_of(folder.name, name)) is not None]
    if versions:
        return max(versions, key=lambda item: item[0])[1]
    where = ", ".join(str(root) for _, root in search_roots()) or f"{checkout_models_dir()} (missing)"
    known = ", ".join(sorted({folder.name for _, folder in candidates})) or "none"
    raise BundleError(f"no model bundle named {name!r} in {where}; available: {known}")


def list_bundles() -> list[BundleInfo]:
    """Every bundle in the search roots, valid or not (``problem`` says why not)."""
    infos: list[BundleInfo] = []
    for source, folder in _candidates():
        try:
            config = load_bundle_config(folder)
        except BundleError as err:
            infos.append(BundleInfo(folder, folder.name, None, (), None, source, problem=str(err)))
            continue
        infos.append(
            BundleInfo(
                path=folder,
                name=folder.name,
                model_version=config["model_version"],
                labels=tuple(config["labels"]),
                architecture=config.get("architecture"),
                source=source,
            )
        )
    return infos
