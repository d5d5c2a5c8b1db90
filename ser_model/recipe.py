"""A training recipe: one TOML file per shipped model, read into one frozen :class:`Recipe`.

Tables: ``[data]`` (DataSettings), ``[features]`` (FeatureSettings), ``[[members]]`` (one
ModelSettings per network, in order; the first is the main one, and a recipe with two or more
members trains their probability average), ``[train]`` (TrainSettings), ``[augment]``
(ser_model.augment.Augmenter) and ``cv_results``. ``train``, ``compare`` and the model card
all read it; a bundle stores it whole (``config.json["training"]`` and ``recipe.toml``), so
``ser-model train --config models/<bundle>/recipe.toml`` retrains a bundle from itself.
Unknown tables and keys are refused with one-line ParameterErrors.

A ser-v3 recipe (one head on utterance vectors) is a file with one ``[v3]`` table, read into
a frozen :class:`HeadRecipe`; :func:`read_recipe` reads either kind. A file may stand on
another (``base = "other.toml"``) and say only what differs; a bundle then stores the merged
recipe (:func:`recipe_text`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ser_model.errors import ParameterError, check_keys
from ser_model.features import FeatureSettings
from ser_model.neural import ModelSettings

#: File name of the recipe inside a bundle.
RECIPE_FILE = "recipe.toml"


@dataclass(frozen=True)
class DataSettings:
    """Which clips to train on."""

    dir: str = "../shared/datasets"
    """Folder holding the corpora (relative paths are taken from the current directory)."""
    corpora: tuple[str, ...] = ("ravdess", "tess")
    """Corpora to use (each read from ``dir/<corpus>`` when that folder exists)."""
    ravdess_actors: tuple[int, ...] = tuple(range(1, 21))
    """RAVDESS actors to use (21-24 are the held-out judges and are never here)."""
    limit_per_speaker: int = 0
    """Keep at most this many clips per speaker (0 = all); for smoke tests."""


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation and bundle settings (shared by every member)."""

    name: str = "ser-crnn"
    """Bundle name; the bundle is written to ``models/<name>-v<version>``."""
    version: int = 1
    """Bundle version."""
    seed: int = 0
    """Seed for numpy, Python and Keras (weights, batches, augmentation, validation speakers)."""
    epochs: int = 30
    """Most epochs; early stopping may end sooner."""
    patience: int = 8
    """Stop after this many epochs without a better validation UAR."""
    keep: str = "best"
    """Weights to keep: 'best' (highest validation-speaker UAR) or 'last' (end of the cosine
    schedule, or where early stopping ended it; less noisy than a max over few speakers)."""
    batch_size: int = 32
    """Mini-batch size."""
    learning_rate: float = 2e-3
    """Peak learning rate of AdamW with cosine decay."""
    weight_decay: float = 1e-4
    """AdamW decoupled weight decay."""
    label_smoothing: float = 0.1
    """Label smoothing of the cross-entropy."""
    mixup_alpha: float = 0.0
    """Mixup Beta(alpha, alpha) within a batch (0 = off)."""
    class_weights: bool = True
    """Weight classes inversely to their training frequency."""
    max_frames: int = 192
    """Frames per model input (crop/zero-pad); 192 x 16 ms = 3.1 s."""
    augment_copies: int = 2
    """Augmented copies of each training clip; each epoch uses one random version per clip."""
    tess_fraction: float = 1.0
    """Fraction of the TESS training clips drawn (anew) each epoch; RAVDESS clips are always all used."""
    val_speakers: int = 2
    """RAVDESS training actors (half male, half female) held out for early stopping."""
    threads: int = 2
    """TensorFlow intra-op threads."""


_TABLES = ("data", "features", "members", "train", "augment", "cv_results")


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _section(cls, raw: Any, name: str):
    if not isinstance(raw, dict):
        raise ParameterError(f"[{name}] must be a table")
    check_keys(raw, cls, f"key(s) in [{name}]")
    try:
        return cls(**_tuples(raw))
    except TypeError as err:
        raise ParameterError(f"[{name}]: {err}") from err


@dataclass(frozen=True)
class Recipe:
    """A whole training recipe (one TOML file): every member network with its full settings."""

    data: DataSettings = field(default_factory=DataSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    members: tuple[ModelSettings, ...] = (ModelSettings(),)
    """The networks trained, in order; the first is the main one; two or more are averaged."""
    train: TrainSettings = field(default_factory=TrainSettings)
    augment: dict = field(default_factory=dict)
    """Augmenter settings (``Augmenter.from_dict``); empty = its defaults."""
    cv_results: str = "docs/results/results.json"
    """``compare`` results whose entry for this recipe (:meth:`cv_name`) goes into metrics.json."""

    def __post_init__(self) -> None:
        if not self.members:
            raise ParameterError("a recipe needs at least one [[members]] table")
        names = self.member_names
        if len(set(names)) != len(names):
            raise ParameterError(f"[[members]]: each architecture at most once, got {', '.join(names)}")

    @property
    def model(self) -> ModelSettings:
        """The main (first) member."""
        return self.members[0]

    @property
    def member_names(self) -> list[str]:
        return [m.architecture for m in self.members]

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1

    def cv_name(self) -> str:
        """The name of this recipe's row in compare's results: the architecture, or 'ensemble'."""
        return "ensemble" if self.is_ensemble else self.model.architecture

    def member(self, name: str) -> ModelSettings:
        """The settings of member ``name``; ParameterError (one line) when the recipe has none."""
        for m in self.members:
            if m.architecture == name:
                return m
        raise ParameterError(f"the recipe has no [[members]] table for {name!r} "
                             f"(it has {', '.join(self.member_names)})")

    def to_dict(self) -> dict:
        """The recipe as plain JSON/TOML data, the same shape :meth:`from_dict` reads."""
        return {"data": _plain(asdict(self.data)), "features": self.features.to_dict(),
                "members": [m.to_dict() for m in self.members], "train": asdict(self.train),
                "augment": dict(self.augment), "cv_results": self.cv_results}

    @classmethod
    def from_dict(cls, raw: dict) -> Recipe:
        """A Recipe from TOML/JSON data; raises ParameterError (one line) for unknown or bad entries."""
        from ser_model.augment import Augmenter

        if not isinstance(raw, dict):
            raise ParameterError("a recipe must be a table")
        check_keys(raw, _TABLES, "table(s)")
        members_raw = raw.get("members", [{}])
        if not isinstance(members_raw, list) or not all(isinstance(m, dict) for m in members_raw):
            raise ParameterError("[[members]] must be an array of tables")
        try:
            features = FeatureSettings.from_dict(raw.get("features", {}))
            members = tuple(ModelSettings.from_dict(_tuples(m)) for m in members_raw)
        except TypeError as err:
            raise ParameterError(str(err)) from err
        augment = dict(raw.get("augment", {}))
        Augmenter.from_dict(augment)  # validate now, not an hour into training
        return cls(data=_section(DataSettings, raw.get("data", {}), "data"), features=features, members=members,
                   train=_section(TrainSettings, raw.get("train", {}), "train"), augment=augment,
                   cv_results=str(raw.get("cv_results", cls.cv_results)))


@dataclass(frozen=True)
class HeadRecipe:
    """A ser-v3 recipe (the ``[v3]`` table of its TOML): one head on utterance vectors, trained
    and cross-validated by :func:`ser_model.train_v3.main_train`."""

    name: str = "ser-v3"
    """Bundle name (folder name)."""
    corpora: tuple[str, ...] = ("ravdess", "tess")
    """Corpora the final model and the CV training folds use."""
    head: str = "mlp"
    """'mlp' (Keras) or 'logreg' (scikit-learn, exported as a Dense layer)."""
    strength: float = 5.0
    """PopulationPrior pseudo-count (clips)."""
    train_ks: tuple[int, ...] = (0, 1, 3, 5, 10, 20, -1)
    """Profile sizes drawn for each training clip (-1: all the speaker's other clips)."""
    hidden: int = 256
    """MLP hidden units."""
    dropout_in: float = 0.2
    """MLP input dropout."""
    dropout: float = 0.4
    """MLP hidden dropout."""
    epochs: int = 25
    """MLP epochs."""
    batch_size: int = 256
    """MLP batch size."""
    lr: float = 1e-3
    """MLP Adam learning rate."""
    l2: float = 1e-4
    """MLP L2 weight decay on the Dense kernels."""
    c: float = 0.05
    """Logistic regression inverse regularisation."""
    ravdess_weight: float = 2.0
    """Sample weight of RAVDESS rows relative to TESS rows (TESS has 2.3x the clips)."""
    speed_factors: tuple[float, ...] = ()
    """Training copies of each ``speed_corpora`` clip played this many times faster (tempo and
    pitch together). A copy is a speaker of its own (``ravdess:01@0.95``, with its own profile)
    and trains only where its original's speaker trains; test clips are never copied."""
    speed_corpora: tuple[str, ...] = ("ravdess",)
    """Corpora whose clips get the ``speed_factors`` copies."""
    channel_copies: int = 0
    """Training copies of each ``channel_corpora`` clip through simulated recording channels
    (room reverberation, band-limited microphone, noise at 15-30 dB SNR, gain:
    ``ser_model.channel``). Copy i of a speaker is one device, a speaker of its own
    (``ravdess:01@ch1``, with its own profile), and trains only where its original's speaker
    trains; test clips are never copied. 0: none."""
    channel_corpora: tuple[str, ...] = ("ravdess",)
    """Corpora whose clips get the ``channel_copies``."""
    encoder_layers: tuple[int, ...] = ()
    """Whisper encoder layers whose outputs the utterance vector pools, e.g. [1, 2, 3, 4]
    (``ser_model.whisper_layers``: the same weights in NumPy; the shipped ser-v3 reads [1, 4]);
    empty: the encoder's final output (CTranslate2)."""
    adapt_k: int = 10
    """Profile size of the adapted evaluation protocol."""
    n_folds: int = 5
    """RAVDESS actor folds."""
    seed: int = 0
    """Seed of profile draws and initialisation."""
    min_confidence: float = 0.45
    """Default written into the bundle when the false-alarm sweep finds nothing better."""
    threads: int = 2
    """Threads for TensorFlow and the encoder."""

    def __post_init__(self) -> None:
        if self.head not in ("mlp", "logreg"):
            raise ParameterError(f"[v3] head must be 'mlp' or 'logreg', got {self.head!r}")
        for f in self.speed_factors:
            if not (isinstance(f, (int, float)) and 0.5 <= f <= 2.0 and f != 1.0):
                raise ParameterError(f"[v3] speed_factors must be numbers in [0.5, 2] other than 1, got {f!r}")
        from ser_model.encoder_features import check_layers

        try:
            check_layers(self.encoder_layers)
        except ParameterError as err:
            raise ParameterError(f"[v3] {err}") from None
        c = self.channel_copies
        if not isinstance(c, int) or isinstance(c, bool) or not 0 <= c <= 8:
            raise ParameterError(f"[v3] channel_copies must be an int in [0, 8], got {c!r}")

    def to_dict(self) -> dict:
        """The recipe as plain TOML data, the same shape :meth:`from_dict` reads."""
        return {"v3": _plain(asdict(self))}

    @classmethod
    def from_dict(cls, raw: dict) -> HeadRecipe:
        """A HeadRecipe from TOML data; raises ParameterError (one line) for unknown or bad entries."""
        check_keys(raw, ("v3",), "table(s) beside [v3]")
        return _section(cls, raw["v3"], "v3")


BASE_DEPTH = 4
"""How many ``base =`` files one recipe may stand on (a loop of bases is refused)."""


def _read_raw(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The TOML tables of ``path``, on top of its ``base`` file's when it names one: a top-level
    ``base = "other.toml"`` (relative to this file) takes every table of that recipe, and this
    file's keys replace the base's key by key within each table (arrays whole). A variant of a
    recipe then says only what differs from it."""
    import tomllib

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ParameterError(f"{path}: cannot read config: {err.strerror or err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ParameterError(f"{path}: not valid TOML: {err}") from err
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base:
        raise ParameterError(f"{path}: base must be the path of another recipe file, got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in seen or path.resolve() == base_path:
        raise ParameterError(f"{path}: base {base!r} leads back to itself")
    if len(seen) >= BASE_DEPTH:
        raise ParameterError(f"{path}: more than {BASE_DEPTH} base files in a row")
    merged = _read_raw(base_path, (*seen, path.resolve()))
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ParameterError(f"cannot write {v!r} as TOML")


def recipe_text(path: str | Path) -> str:
    """The text a bundle stores as its ``recipe.toml``: the file itself (comments kept), or,
    when it stands on a ``base``, the merged tables written out whole, so that
    ``ser-model train --config models/<bundle>/recipe.toml`` still retrains it alone."""
    import tomllib

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if "base" not in tomllib.loads(text):
        return text
    raw = _read_raw(path)
    lines = [f"# {path.name} with its base files merged (ser_model.recipe.recipe_text)"]
    for table, body in raw.items():
        if isinstance(body, list):  # an array of tables ([[members]])
            for item in body:
                lines += ["", f"[[{table}]]", *(f"{k} = {_toml_value(v)}" for k, v in item.items())]
        elif isinstance(body, dict):
            lines += ["", f"[{table}]", *(f"{k} = {_toml_value(v)}" for k, v in body.items())]
        else:
            lines.insert(1, f"{table} = {_toml_value(body)}")
    return "\n".join(lines) + "\n"


def read_recipe(path: str | Path) -> Recipe | HeadRecipe:
    """Read a recipe TOML file: a :class:`HeadRecipe` when it has a ``[v3]`` table, else a
    :class:`Recipe`; raises ParameterError (one line, naming the file) for a bad file. A
    top-level ``base = "other.toml"`` reads that recipe first (:func:`_read_raw`)."""
    path = Path(path)
    raw = _read_raw(path)
    try:
        return HeadRecipe.from_dict(raw) if "v3" in raw else Recipe.from_dict(raw)
    except ParameterError as err:
        raise ParameterError(f"{path}: {err}") from err


def load_recipe(path: str | Path) -> Recipe:
    """A frame-network :class:`Recipe` (``read_recipe``); a ser-v3 file is refused in one line."""
    r = read_recipe(path)
    if isinstance(r, HeadRecipe):
        raise ParameterError(f"{path}: a ser-v3 recipe ([v3]): `ser-model train --config {path}` trains and "
                             "cross-validates it")
    return r


def load_head_recipe(path: str | Path) -> HeadRecipe:
    """A ser-v3 :class:`HeadRecipe` (``read_recipe``); another recipe is refused in one line."""
    r = read_recipe(path)
    if not isinstance(r, HeadRecipe):
        raise ParameterError(f"{path}: no [v3] table (not a ser-v3 recipe)")
    return r
