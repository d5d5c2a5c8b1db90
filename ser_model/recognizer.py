"""Fast emotion inference from a model bundle: :class:`EmotionRecognizer`.

Pipeline for one utterance (any sample rate)::

    ser_model.audio.prepare  ->  ser_model.audio.is_silent?  ->  NoSpeechError
    ser_model.features.frame_features (settings from the bundle)  ->  (x - mean) / std
    zero-pad/crop to the bundle's max_frames (as training does: all-zero frames are padding)
    ->  model  ->  EmotionResult

Two backends run the model (``EmotionRecognizer.load(..., backend=...)`` or
``$SER_MODEL_BACKEND``):

- ``"numpy"``: :mod:`ser_model.np_runtime`, a pure-NumPy interpreter of the saved Keras graph
  for a whitelist of layer types. It never imports TensorFlow or Keras, so a process that
  loads the model and predicts stays far below TensorFlow's ~680 MB import cost and starts
  in a fraction of a second; the shipped ensemble runs in ~5 ms on one core.
- ``"keras"``: ``keras.saving.load_model(..., safe_mode=True)`` and TensorFlow, as below.
- ``"auto"`` (the default): ``"numpy"`` when every layer of the model is supported, else
  ``"keras"``.

With the keras backend the model is called through one ``tf.function`` with a fixed input signature rather than
``keras.Model.predict`` (which costs tens of milliseconds a call in setup alone), so it is
traced once at load time and never retraced. By default the traced function is also
XLA-compiled (``jit=True``), which roughly halves the model's share: for the three-member
crnn+lstm+cnn1d ensemble of ser-crnn-v1 (the shipped ser-crnn-v2 adds a fourth, the cnn2d) a
3-second utterance took a median 7.8 ms on one busy CPU core, features included, against
11.6 ms without XLA (``bench/ser_latency.py``). Compiling costs a
few seconds more at load time (3-6 s on a busy 2-core box), which a long-lived user such as
the assistant pays once, in the background; one-shot command-line runs pass ``jit=False``.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ser_model.bundle import load_bundle_config, resolve_bundle
from ser_model.errors import NoSpeechError, ParameterError, one_line
from ser_model.result import EmotionResult
from ser_model.windows import DEFAULT_HOP_S, DEFAULT_WINDOW_S

if TYPE_CHECKING:
    from ser_model.profile import VoiceProfile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    """One utterance through :meth:`EmotionRecognizer.encode`: what the model reads of it
    (``x``), which model made it, and the seconds it took."""

    model_version: str
    x: np.ndarray
    seconds: float


def default_threads() -> int:
    """Intra-op threads used when none are asked for: the usable cores, at most 2.

    Small models gain little from more threads, and the assistant runs speech-to-text
    beside the recognizer, so two is the sensible ceiling.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def jit_from_env(*, default: bool) -> bool:
    """``$SER_MODEL_JIT`` as a bool (1/true/yes/on or 0/false/no/off), else ``default``."""
    value = os.environ.get("SER_MODEL_JIT", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return default


#: Model backends :meth:`EmotionRecognizer.load` accepts.
BACKENDS = ("auto", "numpy", "keras")


def backend_from_env() -> str:
    """``$SER_MODEL_BACKEND`` (auto/numpy/keras, case-insensitive), else ``"auto"``."""
    value = os.environ.get("SER_MODEL_BACKEND", "").strip().lower()
    if value and value not in BACKENDS:
        raise ParameterError(f"SER_MODEL_BACKEND must be one of {BACKENDS}, got {value!r}")
    return value or "auto"


def _as_mono(samples: Any) -> np.ndarray:
    """``samples`` as a 1-D numeric array (integer PCM and float are both fine; see audio.prepare).
    A 2-D array is (n, channels), as ``soundfile.read`` returns it, and is downmixed like the
    file loader does (the channels' mean; integer PCM keeps its type)."""
    y = np.asarray(samples)
    if y.dtype.kind not in "iufb":
        raise ParameterError(f"samples must be numeric, got dtype {y.dtype}")
    if y.ndim == 2 and y.shape[1] > y.shape[0]:
        raise ParameterError(f"samples must be (n, channels), as soundfile.read gives them; got shape {y.shape} "
                             "(transpose a (channels, n) array)")
    if y.ndim == 2 and y.shape[1] >= 1:
        if y.shape[1] == 1:
            y = y[:, 0]
        elif y.dtype.kind in "iu":
            y = np.rint(y.mean(axis=1)).astype(y.dtype)
        else:
            y = y.mean(axis=1, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"samples must be a 1-D (mono) or (n, channels) array, got shape {y.shape}")
    return y


def _check_rate(sample_rate: Any) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer, float)):
        raise ParameterError(f"sample_rate must be a positive number, got {sample_rate!r}")
    if not math.isfinite(sample_rate) or sample_rate <= 0 or int(sample_rate) != sample_rate:
        raise ParameterError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    return int(sample_rate)


class EmotionRecognizer:
    """Emotion recognition with one model bundle; build it with :meth:`load`.

    Attributes: ``path`` (the bundle folder), ``labels`` (model output order), ``config``
    (the validated config.json), ``model_version``, ``sample_rate`` (the model's rate),
    ``jit`` (whether the model runs XLA-compiled; always False with the numpy backend),
    ``backend`` (``"numpy"`` or ``"keras"``). ``predict`` is thread-safe.
    """

    def __init__(
        self, path: Path, config: dict[str, Any], model: Any, tf: Any = None, *, jit: bool = True,
        backend: str = "keras", whisper: Any = None,
    ) -> None:
        from ser_model.features import FeatureSettings

        self.path: Path = Path(path)
        self.config: dict[str, Any] = config
        self.labels: tuple[str, ...] = tuple(config["labels"])
        self.model_version: str = config["model_version"]
        self.sample_rate: int = int(config["sample_rate"])
        from ser_model.errors import BundleError

        self.input_kind: str = config["input"]["kind"]
        self._lock = threading.Lock()
        self._tf = tf
        self.backend: str = backend
        self.feature_id: str | None = None
        if self.input_kind == "utterance":
            self._init_v3(config, model, whisper)
            return
        try:
            self.settings = FeatureSettings.from_dict(config["features"])
        except (ParameterError, TypeError) as err:
            raise BundleError(f"{self.path}: bad feature settings in config.json: {one_line(err)}") from err
        self.max_frames: int | None = config["input"].get("max_frames")
        self._mean = np.asarray(config["normalization"]["mean"], dtype=np.float32)
        self._std = np.asarray(config["normalization"]["std"], dtype=np.float32)
        self._model = model
        n_features = self._mean.shape[0]
        if self.input_kind == "frames":
            shape: tuple[int, ...] = (1, self.max_frames, n_features)
            expected = self.settings.n_frame_features
        else:
            shape = (1, n_features)
            expected = self.settings.n_pooled_features
        if expected != n_features:
            raise BundleError(
                f"{self.path}: the feature settings give {expected} features but normalization has {n_features}"
            )
        self._input_shape = shape
        self._check_model_shape(model, shape)
        if backend == "numpy":
            self._call = model
            self._run_model(np.zeros(shape, dtype=np.float32))  # fails here, not on the first utterance
            self.jit = False
        else:
            self.jit = self._compile(model, shape, jit)

    def _init_v3(self, config: dict[str, Any], model: Any, whisper: Any) -> None:
        """ser-v3: Whisper encoder + prosody utterance vector, per-speaker standardisation."""
        from ser_model import v3
        from ser_model.errors import BundleError

        self.settings = None
        self.max_frames = None
        self._whisper = whisper
        self.encoder_layers: tuple[int, ...] = tuple((config.get("encoder") or {}).get("layers", ()))
        """The Whisper encoder layers the features read (() the final output)."""
        self._mean, self._std, self._prior = v3.read_config(config, str(self.path))
        self.feature_id = config["feature_id"]
        self._temperature = float(config.get("temperature", 1.0))
        if not (math.isfinite(self._temperature) and self._temperature > 0):
            raise BundleError(f"{self.path}: 'temperature' must be a positive number")
        dim = self._mean.shape[0]
        self._input_shape = (1, v3.input_dim(dim))
        self._check_model_shape(model, self._input_shape)
        if self.backend != "numpy":
            raise BundleError(f"{self.path}: ser-v3 heads run on the NumPy runtime only")
        self._call = model
        self._run_model(np.zeros(self._input_shape, dtype=np.float32))
        self.jit = False

    @property
    def supports_profiles(self) -> bool:
        """Whether :meth:`predict` can use a :class:`~ser_model.profile.VoiceProfile` (ser-v3 bundles)."""
        return self.input_kind == "utterance"

    def new_profile(self) -> VoiceProfile:
        """An empty voice profile for this model's features; SerError when profiles are not supported."""
        from ser_model.errors import SerError
        from ser_model.profile import VoiceProfile

        if not self.supports_profiles:
            raise SerError(f"{self.model_version} does not support voice profiles")
        return VoiceProfile.new(self.feature_id, int(self._mean.shape[0]))

    def _check_profile(self, profile: VoiceProfile | None) -> None:
        if profile is None or not self.supports_profiles:
            return
        from ser_model.profile import ProfileError, VoiceProfile

        if not isinstance(profile, VoiceProfile):
            raise ParameterError(f"profile must be a VoiceProfile, got {type(profile).__name__}")
        if profile.feature_id != self.feature_id or profile.dim != self._mean.shape[0]:
            raise ProfileError(f"voice profile was made for features {profile.feature_id!r}, "
                               f"this model reads {self.feature_id!r}: reset the profile")

    def utterance_vector(self, y: np.ndarray) -> np.ndarray:
        """ser-v3 utterance vector (float32 (dim,)) of prepared audio ``y`` at the bundle's rate."""
        from ser_model.encoder_features import utterance_vector

        return utterance_vector(self._whisper, y, self.encoder_layers)

    def _compile(self, model: Any, shape: tuple[int, ...], jit: bool) -> bool:
        """Trace the model once for ``shape`` (XLA-compiled when ``jit``); returns whether XLA is used.

        XLA makes the model call about twice as fast on CPU for a few seconds of compilation
        at load time. If XLA cannot compile the model, the plain graph is used and a warning
        is logged.
        """
        tf = self._tf
        signature = [tf.TensorSpec(shape, tf.float32)]
        zeros = np.zeros(shape, dtype=np.float32)
        if jit:
            self._call = tf.function(lambda x: model(x, training=False), input_signature=signature, jit_compile=True)
            try:
                self._run_model(zeros)  # compiles now, so the first real call is as fast as the rest
                return True
            except (tf.errors.OpError, NotImplementedError) as err:
                log.warning("XLA cannot compile %s (%s); using the plain TensorFlow graph", self.path, one_line(err))
        self._call = tf.function(lambda x: model(x, training=False), input_signature=signature)
        self._run_model(zeros)
        return False

    # -- construction -------------------------------------------------------------------

    def _warmed(self) -> EmotionRecognizer:
        """Run one prediction on 1 s of a gliding, voiced-like tone; return self."""
        rate = self.sample_rate
        t = np.arange(rate, dtype=np.float32) / rate
        signal = 0.3 * np.sin(2 * np.pi * (150 + 100 * t) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
        self.predict(signal.astype(np.float32), rate)
        return self

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        threads: int | None = None,
        jit: bool | None = None,
        backend: str | None = None,
    ) -> EmotionRecognizer:
        """Load a bundle: ``None`` for the default shipped one, a bundle name, or a folder.

        The recognizer returned has already run one prediction on a synthetic signal, so
        the first real one does not pay the one-time costs (importing librosa/scipy for the
        features, about 2-3 s here; tracing the model).

        ``backend``: ``"auto"`` (default; ``$SER_MODEL_BACKEND`` changes the default),
        ``"numpy"`` or ``"keras"``; see the module docstring. ``"auto"`` uses the NumPy
        runtime when it supports every layer of the model and falls back to Keras otherwise;
        ``"numpy"`` raises :class:`~ser_model.errors.BundleError` for an unsupported model.
        ``threads``: TensorFlow intra-op threads (default :func:`default_threads`); set once
        per process, by whichever recognizer loads first (keras backend only).
        ``jit``: XLA-compile the model (keras backend only; default True, ``$SER_MODEL_JIT=0``
        changes the default): about half the model's time per call, for a few seconds more
        at load time.
        Raises :class:`~ser_model.errors.BundleError` for a missing or corrupt bundle.
        """
        folder = resolve_bundle(path)
        config = load_bundle_config(folder)
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ParameterError(f"threads must be a positive integer, got {threads!r}")
        backend = backend_from_env() if backend is None else backend
        if backend not in BACKENDS:
            raise ParameterError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if config["input"]["kind"] == "utterance":
            return cls._load_v3(folder, config, threads)
        if backend in ("auto", "numpy"):
            from ser_model import np_runtime

            try:
                model = np_runtime.load_numpy_model(folder / config["weights"])
            except np_runtime.UnsupportedModelError as err:
                if backend == "numpy":
                    raise
                log.info("%s: NumPy runtime unavailable (%s); using Keras", folder, one_line(err))
            else:
                return cls(folder, config, model, None, jit=False, backend="numpy")._warmed()
        from ser_model.tf_quiet import import_keras, import_tensorflow

        tf = import_tensorflow(threads or default_threads())
        keras = import_keras()

        import ser_model.layers  # noqa: F401  (registers the custom layers)
        from ser_model.errors import BundleError

        weights = folder / config["weights"]
        try:
            model = keras.saving.load_model(str(weights), safe_mode=True, compile=False)
        except (ValueError, TypeError, OSError, KeyError) as err:
            raise BundleError(f"{weights}: cannot load the Keras model: {one_line(err)}") from err
        if jit is None:
            jit = jit_from_env(default=True)
        return cls(folder, config, model, tf, jit=bool(jit), backend="keras")._warmed()

    @classmethod
    def _load_v3(cls, folder: Path, config: dict[str, Any], threads: int | None) -> EmotionRecognizer:
        """A ser-v3 bundle: refuse another encoder, then the NumPy head and the shared Whisper model.

        ``threads`` None uses :func:`~ser_model.whisper_model.shared_whisper` with its default
        threads, the same call the STT makes, so one model serves both.
        """
        from ser_model import np_runtime
        from ser_model.encoder_features import ENCODER_NAME, check_layers, feature_id
        from ser_model.errors import BundleError, ParameterError
        from ser_model.whisper_model import TINY_EN_SHA256, shared_whisper

        enc = config.get("encoder")
        if not isinstance(enc, dict) or enc.get("name") != ENCODER_NAME or enc.get("sha256") != TINY_EN_SHA256:
            got = f"{enc.get('name')} {str(enc.get('sha256'))[:12]}" if isinstance(enc, dict) else repr(enc)
            raise BundleError(f"{folder}: trained with encoder {got}, but this build reads {ENCODER_NAME} "
                              f"{TINY_EN_SHA256[:12]}: refusing to load it")
        try:
            layers = check_layers(enc.get("layers", ()))
        except ParameterError as err:
            raise BundleError(f"{folder}: config.json encoder: {err}") from None
        if config.get("feature_id") != feature_id(layers=layers):
            raise BundleError(f"{folder}: trained on features {config.get('feature_id')!r}, this build computes "
                              f"{feature_id(layers=layers)!r}: refusing to load it")
        model = np_runtime.load_numpy_model(folder / config["weights"])
        whisper = shared_whisper() if threads is None else shared_whisper(cpu_threads=threads)
        return cls(folder, config, model, None, jit=False, backend="numpy", whisper=whisper)._warmed()

    def _check_model_shape(self, model: Any, shape: tuple[int | None, ...]) -> None:
        from ser_model.errors import BundleError

        try:
            declared = tuple(model.input_shape) if hasattr(model, "submodels") else tuple(model.inputs[0].shape)
        except (AttributeError, IndexError, TypeError):
            return  # subclassed models declare no input; the trace below will check
        if len(declared) != len(shape) or any(d is not None and d != s for d, s in zip(declared[1:], shape[1:])):
            raise BundleError(
                f"{self.path}: model input {declared} does not fit config.json input {shape} "
                f"(input.kind={self.input_kind}, {len(self._mean)} normalisation columns)"
            )
        out = (
            tuple(model.outputs[0].shape)
            if getattr(model, "outputs", None) and not hasattr(model, "submodels")
            else None
        )
        if out is not None and out[-1] is not None and out[-1] != len(self.labels):
            raise BundleError(
                f"{self.path}: model has {out[-1]} outputs but config.json lists {len(self.labels)} labels"
            )

    def __repr__(self) -> str:
        return f"EmotionRecognizer({self.model_version!r}, path={str(self.path)!r}, labels={list(self.labels)})"

    # -- pipeline pieces ----------------------------------------------------------------

    def features(self, y: np.ndarray) -> np.ndarray:
        """Normalised model input for prepared audio ``y`` (at the bundle's rate), batch of 1."""
        from ser_model.features import frame_features, pooled_features

        if self.input_kind == "utterance":
            from ser_model import v3

            return v3.model_input(self.utterance_vector(y), norm_mean=self._mean, norm_std=self._std,
                                  prior=self._prior, profile=None)
        if self.input_kind == "frames":
            feats = frame_features(y, settings=self.settings)
            feats = (feats - self._mean) / self._std
            x = np.zeros(self._input_shape, dtype=np.float32)
            n = min(len(feats), self.max_frames)
            x[0, :n] = feats[:n]
            return x
        feats = pooled_features(y, settings=self.settings)
        return ((feats - self._mean) / self._std).astype(np.float32)[None, :]

    def _run_model(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            out = self._call(x)
        p = np.asarray(out, dtype=np.float64).reshape(-1)
        if p.shape[0] != len(self.labels):
            from ser_model.errors import BundleError

            raise BundleError(f"{self.path}: model returned {p.shape[0]} values for {len(self.labels)} labels")
        if not np.all(np.isfinite(p)):
            raise ParameterError("model produced non-finite outputs (check the input audio)")
        if np.any(p < 0) or abs(p.sum() - 1.0) > 1e-3:  # logits, not probabilities
            p = np.exp(p - p.max())
        return p / p.sum()

    def _result(self, probs: np.ndarray, started: float) -> EmotionResult:
        best = int(np.argmax(probs))
        return EmotionResult(
            label=self.labels[best],
            confidence=float(probs[best]),
            probs={label: float(p) for label, p in zip(self.labels, probs)},
            model_version=self.model_version,
            seconds=time.perf_counter() - started,
        )

    def _encode_prepared(self, y: np.ndarray) -> np.ndarray:
        """What the model reads of prepared audio ``y``: ser-v3's utterance vector (a profile
        applies after it), or the other bundles' normalised input. NoSpeechError for silence."""
        from ser_model.audio import is_silent

        if y.size == 0 or is_silent(y, sample_rate=self.sample_rate):
            raise NoSpeechError("no speech detected")
        return self.utterance_vector(y) if self.supports_profiles else self.features(y)

    def _predict_x(self, x: np.ndarray, started: float, profile: VoiceProfile | None = None,
                   learn: bool = False) -> EmotionResult:
        """The result for ``x`` of :meth:`_encode_prepared`: ser-v3 standardises the vector by
        ``profile`` (as it was) and adds it when ``learn``."""
        if not self.supports_profiles:
            return self._result(self._run_model(x), started)
        from ser_model import v3

        self._check_profile(profile)
        vec = x
        x = v3.model_input(vec, norm_mean=self._mean, norm_std=self._std, prior=self._prior, profile=profile)
        probs = self._run_model(x)
        if self._temperature != 1.0:
            from ser_model.v3 import tempered

            probs = tempered(probs, self._temperature)
        result = self._result(probs, started)  # scored with the profile as it was
        if learn and profile is not None:
            profile.add(vec)
        return result

    def _predict_prepared(self, y: np.ndarray, started: float, profile: VoiceProfile | None = None,
                          learn: bool = False) -> EmotionResult:
        return self._predict_x(self._encode_prepared(y), started, profile, learn)

    # -- public API ---------------------------------------------------------------------

    def predict(self, samples: Any, sample_rate: int, profile: VoiceProfile | None = None, *,
                learn: bool = False) -> EmotionResult:
        """The emotion in one utterance: a 1-D float array (mono) at any ``sample_rate``.

        The CRNN bundles take ``max_frames`` frames (about 3 s); a longer utterance is judged
        on its first ``max_frames`` frames. ser-v3 reads the whole utterance (up to 30 s).
        ``profile``: the speaker's :class:`~ser_model.profile.VoiceProfile` (ser-v3; ignored by
        bundles without :attr:`supports_profiles`). The utterance is scored with the profile as
        it was; then, with ``learn=True``, its features (computed once) are added to it.
        For recordings, use :meth:`predict_windows` / :meth:`predict_file_windows`.
        Raises :class:`NoSpeechError` for silence or near-silence, :class:`ParameterError`
        for a wrongly shaped array or rate, ProfileError for a profile of other features.
        """
        started = time.perf_counter()
        y = self._prepared(samples, sample_rate)
        return self._predict_prepared(y, started, profile, learn)

    def encode(self, samples: Any, sample_rate: int) -> Encoded:
        """The costly part of :meth:`predict` (audio conditioning, the Whisper encoder and
        prosody, or the frame features), to finish later with :meth:`predict_encoded`, e.g.
        with the voice profile as it is by then. ``predict(s, r, p, learn=l)`` is
        ``predict_encoded(encode(s, r), p, learn=l)``, result for result. Raises like
        :meth:`predict`."""
        started = time.perf_counter()
        x = self._encode_prepared(self._prepared(samples, sample_rate))
        return Encoded(self.model_version, x, time.perf_counter() - started)

    def predict_encoded(self, encoded: Encoded, profile: VoiceProfile | None = None, *,
                        learn: bool = False) -> EmotionResult:
        """The emotion of an utterance :meth:`encode` prepared (by this model: ParameterError
        for another's); ``profile`` and ``learn`` as in :meth:`predict`. The result's
        ``seconds`` include the encoding."""
        if not isinstance(encoded, Encoded) or encoded.model_version != self.model_version:
            raise ParameterError(f"encoded must come from this model's encode() ({self.model_version})")
        return self._predict_x(encoded.x, time.perf_counter() - encoded.seconds, profile, learn)

    def _prepared(self, samples: Any, sample_rate: int) -> np.ndarray:
        y = _as_mono(samples)
        rate = _check_rate(sample_rate)
        if y.size == 0:
            raise NoSpeechError("no speech detected (empty audio)")
        from ser_model.audio import is_silent, prepare

        if is_silent(y, sample_rate=rate):
            raise NoSpeechError("no speech detected")
        return prepare(y, sample_rate=rate, target_rate=self.sample_rate)

    def adapt(self, profile: VoiceProfile, samples: Any, sample_rate: int) -> None:
        """Add one utterance to ``profile`` without scoring it (calibration).

        Raises SerError when the model does not support profiles, NoSpeechError for silence.
        """
        if not self.supports_profiles:
            from ser_model.errors import SerError

            raise SerError(f"{self.model_version} does not support voice profiles")
        self._check_profile(profile)
        y = self._prepared(samples, sample_rate)
        from ser_model.audio import is_silent

        if y.size == 0 or is_silent(y, sample_rate=self.sample_rate):
            raise NoSpeechError("no speech detected")
        profile.add(self.utterance_vector(y))

    def predict_file(self, path: str | Path, profile: VoiceProfile | None = None, *,
                     learn: bool = False) -> EmotionResult:
        """The emotion in one utterance stored as a file (any format ser_model.audio.load_audio
        reads); judged like :meth:`predict`. For long recordings use :meth:`predict_file_windows`.

        Raises :class:`AudioLoadError` for an unreadable file, :class:`NoSpeechError` for silence.
        """
        from ser_model.audio import load_audio

        started = time.perf_counter()
        y = load_audio(path, sample_rate=self.sample_rate)
        return self._predict_prepared(y, started, profile, learn)

    def predict_windows(
        self,
        samples: Any,
        sample_rate: int,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        hop_s: float = DEFAULT_HOP_S,
    ) -> list[tuple[float, float, EmotionResult | None]]:
        """Emotion over time: ``[(start_s, end_s, result or None for no speech), ...]``.

        Windows of ``window_s`` seconds start every ``hop_s`` seconds; the last one ends at the
        end of the audio (it may be shorter). Each window is prepared on its own.
        """
        from ser_model.windows import window_bounds, window_sizes

        y = _as_mono(samples)
        rate = _check_rate(sample_rate)
        win, hop = window_sizes(window_s, hop_s, rate)
        return [self._window(y[start:end], start, rate) for start, end in window_bounds(len(y), win, hop)]

    def predict_file_windows(
        self,
        path: str | Path,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        hop_s: float = DEFAULT_HOP_S,
    ) -> Iterator[tuple[float, float, EmotionResult | None]]:
        """Like :meth:`predict_windows` for a file of any length, streamed block by block.

        Reads with ``soundfile`` blocks (one window in memory at a time), so a 10-minute
        recording costs no more memory than one window. Yields as it goes.
        Raises :class:`AudioLoadError` if the file cannot be opened or read.
        """
        from ser_model.windows import mono_blocks, window_sizes

        with mono_blocks(path) as (rate, blocks):
            win, hop = window_sizes(window_s, hop_s, rate)
            buf = np.zeros(0, dtype=np.float32)
            buf_start = 0  # index of buf[0] in the file
            last_end = 0  # end of the last window yielded
            for mono in blocks(hop):
                buf = np.concatenate([buf, mono])
                while len(buf) >= win:
                    yield self._window(buf[:win], buf_start, rate)
                    last_end = buf_start + win
                    buf = buf[hop:]
                    buf_start += hop
            if len(buf) and buf_start + len(buf) > last_end:
                yield self._window(buf, buf_start, rate)

    def _window(self, chunk: np.ndarray, start: int, rate: int) -> tuple[float, float, EmotionResult | None]:
        return start / rate, (start + len(chunk)) / rate, self._predict_or_none(chunk, rate)

    def _predict_or_none(self, chunk: np.ndarray, rate: int) -> EmotionResult | None:
        try:
            return self.predict(chunk, rate)
        except NoSpeechError:
            return None
