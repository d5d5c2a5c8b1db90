"""Keras architectures over frame features ``(frames, features)``.

- ``lstm``: the seed project's LSTM (stacked LSTMs, dropout, dense).
- ``cnn1d``: the seed project's 1-D CNN (4 Conv1D blocks with pooling and dropout, dense).
- ``crnn``: our design: padding mask, SpecAugment, 1-D conv blocks with batch norm and
  residual connections, a small BiGRU, attentive statistics pooling.
- ``cnn2d``: our second design: the log-mel bands as a time x frequency image through 2-D conv
  blocks (a pitch or formant shift between speakers moves a pattern along the frequency axis,
  which 2-D convolution and pooling tolerate and per-band 1-D models do not), then attentive
  statistics pooling over time.

All take zero-padded, normalised frame features; all-zero frames are treated as padding
where the architecture can (``FrameMask``). Keras/TensorFlow are imported inside functions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ser_model.errors import ParameterError, check_keys
from ser_model.tf_quiet import import_keras

ARCHITECTURES: tuple[str, ...] = ("lstm", "cnn1d", "crnn", "cnn2d")


@dataclass(frozen=True)
class ModelSettings:
    """Hyper-parameters of the neural architectures (unused ones are ignored)."""

    architecture: str = "crnn"
    """One of ARCHITECTURES."""
    channels: tuple[int, ...] = (64, 96, 128)
    """crnn/cnn1d: filters of each conv block (cnn1d uses 4 blocks, padded from this)."""
    kernel_size: int = 5
    """Conv1D kernel size in frames."""
    rnn_units: int = 48
    """crnn: units per direction of the BiGRU (0 = no recurrent layer); lstm: first LSTM."""
    attention_units: int = 64
    """crnn: hidden units of the attention scorer."""
    dropout: float = 0.3
    """Dropout rate before the classifier (and between blocks, halved)."""
    spec_augment: bool = True
    """crnn: apply SpecAugment (training only) right after the input."""
    freq_width: int = 8
    """SpecAugment: widest feature band masked."""
    time_width: int = 16
    """SpecAugment: longest frame span masked."""
    l2: float = 1e-4
    """L2 weight decay on conv/dense kernels."""
    block_convs: int = 2
    """crnn: Conv1D layers per residual block (1 or 2); cnn2d: Conv2D layers per block."""
    image_bins: int = 64
    """cnn2d: the first ``image_bins`` feature columns (the log-mel bands, which come first in
    the frame features) form the 2-D time x frequency input."""

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ParameterError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if not self.channels or min(self.channels) < 1:
            raise ParameterError("channels must be a non-empty list of positive ints")
        if not 0.0 <= self.dropout < 1.0:
            raise ParameterError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSettings:
        check_keys(d, cls, "model settings")
        return cls(**d)


def describe(settings: ModelSettings) -> str:
    """One line for a model card: what :func:`build_model` builds from ``settings``."""
    s, a = settings, settings.architecture
    if a == "lstm":
        units = s.rnn_units or 64
        return (f"lstm (the seed design): 4-frame average -> masking -> LSTM {units} -> dropout -> "
                f"LSTM {max(units // 2, 8)} -> dropout -> dense 64 -> softmax.")
    if a == "cnn1d":
        ch = _cnn1d_channels(s)
        return (f"cnn1d (the seed design): {len(ch)} x [Conv1D ({', '.join(map(str, ch))}; kernel {s.kernel_size}) "
                "-> ReLU -> max-pool 2 -> dropout] -> global average -> dense 64 -> dropout -> softmax.")
    aug = "SpecAugment (training only) -> " if s.spec_augment else ""
    if a == "crnn":
        return (f"crnn: {aug}"
                + f"{len(s.channels)} residual Conv1D blocks {list(s.channels)} (kernel {s.kernel_size}, batch norm, "
                "max-pool 2) -> " + (f"BiGRU {s.rnn_units}x2 -> " if s.rnn_units else "")
                + "attentive statistics pooling over unpadded frames -> dropout -> softmax.")
    return (f"cnn2d: {aug}the {s.image_bins} log-mel bands as a frames x bands image -> {len(s.channels)} blocks of "
            f"[Conv2D 3x3 -> batch norm -> ReLU] x {s.block_convs} and max-pool 2x2, channels {list(s.channels)} "
            "-> bands flattened per frame -> attentive statistics pooling over unpadded frames -> dropout -> "
            "softmax.")


def build_model(input_shape: tuple[int, int], n_classes: int, settings: ModelSettings, *, seed: int = 0):
    """An uncompiled Keras model for ``settings.architecture`` on inputs ``(frames, features)``."""
    builders = {"lstm": build_lstm, "cnn1d": build_cnn1d, "crnn": build_crnn, "cnn2d": build_cnn2d}
    return builders[settings.architecture](tuple(input_shape), n_classes, settings, seed=seed)


def build_lstm(input_shape, n_classes, settings: ModelSettings, *, seed: int = 0):
    """The seed LSTM: LSTM(units, sequences) -> dropout -> LSTM(units/2) -> dropout -> dense -> softmax.

    The frame sequence is first averaged over 4 frames (64 ms steps at the default hop) so that
    it trains on a CPU in minutes; padding frames (all zero, and so still zero after the
    average) are skipped with a Masking layer.
    """
    keras = import_keras()

    keras.utils.set_random_seed(seed)
    units = settings.rnn_units or 64
    inp = keras.Input(shape=input_shape, name="frames")
    x = keras.layers.AveragePooling1D(4, padding="same", name="frame_average")(inp)
    x = keras.layers.Masking(mask_value=0.0)(x)
    x = keras.layers.LSTM(units, return_sequences=True)(x)
    x = keras.layers.Dropout(settings.dropout)(x)
    x = keras.layers.LSTM(max(units // 2, 8))(x)
    x = keras.layers.Dropout(settings.dropout)(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="lstm")


def _cnn1d_channels(settings: ModelSettings) -> list[int]:
    """cnn1d's 4 blocks' filters: ``channels``, padded with its last entry or cut to 4."""
    return (list(settings.channels) + [settings.channels[-1]] * (4 - len(settings.channels)))[:4]


def build_cnn1d(input_shape, n_classes, settings: ModelSettings, *, seed: int = 0):
    """The seed 1-D CNN: 4 x [Conv1D -> ReLU -> MaxPool(2) -> Dropout], global average, dense, softmax."""
    keras = import_keras()

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape=input_shape, name="frames")
    x = inp
    for c in _cnn1d_channels(settings):
        x = keras.layers.Conv1D(c, settings.kernel_size, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling1D(2, padding="same")(x)
        x = keras.layers.Dropout(settings.dropout / 2)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    x = keras.layers.Dropout(settings.dropout)(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="cnn1d")


def _masked_input(input_shape, settings: ModelSettings, seed: int):
    """Our designs' input: (Input, frame mask, the features after SpecAugment when enabled, the
    L2 regulariser or None)."""
    keras = import_keras()

    from ser_model.layers import FrameMask, SpecAugment

    reg = keras.regularizers.L2(settings.l2) if settings.l2 > 0 else None
    inp = keras.Input(shape=input_shape, name="frames")
    mask = FrameMask(name="frame_mask")(inp)
    x = inp
    if settings.spec_augment:
        x = SpecAugment(freq_width=settings.freq_width, time_width=settings.time_width, seed=seed,
                        name="spec_augment")(x)
    return inp, mask, x, reg


def _attentive_head(x, mask, n_classes: int, settings: ModelSettings, reg):
    """Our designs' output: attentive statistics pooling over unmasked frames -> dropout -> softmax."""
    keras = import_keras()

    from ser_model.layers import AttentionPooling

    x = AttentionPooling(settings.attention_units, with_std=True, name="att_pool")([x, mask])
    x = keras.layers.Dropout(settings.dropout)(x)
    return keras.layers.Dense(n_classes, activation="softmax", kernel_regularizer=reg, name="probs")(x)


def build_crnn(input_shape, n_classes, settings: ModelSettings, *, seed: int = 0):
    """Our design: mask -> SpecAugment -> [Conv1D-BN-ReLU x2 + residual, MaxPool(2)] per
    entry of ``channels`` -> BiGRU -> attentive statistics pooling -> dropout -> softmax."""
    keras = import_keras()

    keras.utils.set_random_seed(seed)
    inp, mask, x, reg = _masked_input(input_shape, settings, seed)
    for i, c in enumerate(settings.channels):
        shortcut = keras.layers.Conv1D(c, 1, use_bias=False, kernel_regularizer=reg, name=f"b{i}_proj")(x)
        y = x
        for j in range(settings.block_convs):
            if j:
                y = keras.layers.Activation("relu")(y)
            y = keras.layers.Conv1D(c, settings.kernel_size if j == 0 else 3, padding="same", use_bias=False,
                                    kernel_regularizer=reg, name=f"b{i}_conv{j + 1}")(y)
            y = keras.layers.BatchNormalization(name=f"b{i}_bn{j + 1}")(y)
        x = keras.layers.Activation("relu")(keras.layers.Add()([shortcut, y]))
        x = keras.layers.MaxPooling1D(2, padding="same", name=f"b{i}_pool")(x)
        mask = keras.layers.MaxPooling1D(2, padding="same", name=f"b{i}_mask_pool")(mask)
        x = keras.layers.SpatialDropout1D(settings.dropout / 2)(x)
    if settings.rnn_units > 0:
        x = keras.layers.Bidirectional(keras.layers.GRU(settings.rnn_units, return_sequences=True),
                                       name="bigru")(x)
    return keras.Model(inp, _attentive_head(x, mask, n_classes, settings, reg), name="crnn")


def build_cnn2d(input_shape, n_classes, settings: ModelSettings, *, seed: int = 0):
    """Our 2-D design: mask -> SpecAugment -> log-mel columns as a (frames, bands, 1) image ->
    per entry of ``channels``: [Conv2D 3x3 -> BN -> ReLU] x ``block_convs`` -> MaxPool 2x2 ->
    the remaining bands flattened per frame -> attentive statistics pooling over unpadded frames
    -> dropout -> softmax."""
    keras = import_keras()

    from ser_model.layers import FeatureSlice

    frames, n_feat = input_shape
    bins = settings.image_bins
    if not 0 < bins <= n_feat:
        raise ParameterError(f"image_bins must be in 1..{n_feat}, got {bins}")
    keras.utils.set_random_seed(seed)
    inp, mask, x, reg = _masked_input(input_shape, settings, seed)
    x = FeatureSlice(0, bins, name="logmel")(x)
    x = keras.layers.Reshape((frames, bins, 1), name="image")(x)
    t, f = frames, bins
    for i, c in enumerate(settings.channels):
        for j in range(max(1, settings.block_convs)):
            x = keras.layers.Conv2D(c, 3, padding="same", use_bias=False, kernel_regularizer=reg,
                                    name=f"b{i}_conv{j + 1}")(x)
            x = keras.layers.BatchNormalization(name=f"b{i}_bn{j + 1}")(x)
            x = keras.layers.Activation("relu", name=f"b{i}_relu{j + 1}")(x)
        pool_f = 2 if f >= 2 else 1
        x = keras.layers.MaxPooling2D((2, pool_f), padding="same", name=f"b{i}_pool")(x)
        mask = keras.layers.MaxPooling1D(2, padding="same", name=f"b{i}_mask_pool")(mask)
        t, f = -(-t // 2), -(-f // pool_f)
        if settings.dropout > 0:
            x = keras.layers.SpatialDropout2D(settings.dropout / 2, name=f"b{i}_drop")(x)
    x = keras.layers.Reshape((t, f * settings.channels[-1]), name="per_frame")(x)
    return keras.Model(inp, _attentive_head(x, mask, n_classes, settings, reg), name="cnn2d")
