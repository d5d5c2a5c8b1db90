"""Custom Keras layers, registered so that ``keras.saving.load_model(p, safe_mode=True)`` works.

Import this module (it imports Keras) before loading a bundle's ``model.keras``.
No Lambda layers anywhere: safe mode refuses them.
"""

from __future__ import annotations

from ser_model.tf_quiet import import_keras

keras = import_keras()
ops = keras.ops


@keras.saving.register_keras_serializable(package="ser_model")
class FrameMask(keras.layers.Layer):
    """Marks real frames: (batch, frames, features) -> (batch, frames, 1) float, 1.0 where any
    feature of the frame is non-zero and 0.0 for the all-zero frames used as padding."""

    def call(self, inputs):
        return ops.cast(ops.any(ops.not_equal(inputs, 0.0), axis=-1, keepdims=True), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package="ser_model")
class AttentionPooling(keras.layers.Layer):
    """Attentive statistics pooling over time.

    Inputs ``[x, mask]``: x (batch, frames, channels), mask (batch, frames, 1) in {0, 1}.
    A small tanh MLP scores each frame; scores of masked frames are set to -inf-ish before the
    softmax over frames. Output: the attention-weighted mean, and with ``with_std`` also the
    weighted standard deviation, concatenated: (batch, channels) or (batch, 2 * channels).
    """

    def __init__(self, units: int = 64, with_std: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.with_std = bool(with_std)
        self.hidden = keras.layers.Dense(self.units, activation="tanh", name="att_hidden")
        self.score = keras.layers.Dense(1, name="att_score")

    def build(self, input_shape):
        x_shape = input_shape[0]
        self.hidden.build(x_shape)
        self.score.build((*x_shape[:-1], self.units))
        super().build(input_shape)

    def call(self, inputs):
        x, mask = inputs
        logits = self.score(self.hidden(x))  # (B, T, 1)
        logits = logits + (1.0 - mask) * -1e9
        w = ops.softmax(logits, axis=1)
        mean = ops.sum(w * x, axis=1)
        if not self.with_std:
            return mean
        var = ops.sum(w * ops.square(x), axis=1) - ops.square(mean)
        std = ops.sqrt(ops.maximum(var, 1e-6))
        return ops.concatenate([mean, std], axis=-1)

    def compute_output_shape(self, input_shape):
        x_shape = input_shape[0]
        c = x_shape[-1] * (2 if self.with_std else 1)
        return (x_shape[0], c)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "with_std": self.with_std}


@keras.saving.register_keras_serializable(package="ser_model")
class FeatureSlice(keras.layers.Layer):
    """Columns ``start:stop`` of the last axis: (batch, frames, features) -> (batch, frames, stop - start)."""

    def __init__(self, start: int = 0, stop: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.start = int(start)
        self.stop = int(stop)

    def call(self, inputs):
        return inputs[..., self.start : self.stop]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.stop - self.start)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="ser_model")
class MaskedGlobalPooling(keras.layers.Layer):
    """Mean over the unmasked frames: inputs ``[x, mask]`` -> (batch, channels)."""

    def call(self, inputs):
        x, mask = inputs
        return ops.sum(x * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][-1])


@keras.saving.register_keras_serializable(package="ser_model")
class SpecAugment(keras.layers.Layer):
    """SpecAugment on frame features during training only (identity at inference).

    Zeroes up to ``freq_masks`` bands of at most ``freq_width`` feature columns and up to
    ``time_masks`` spans of at most ``time_width`` frames, per example. Inputs are normalised
    features, so zero is the training mean.
    """

    def __init__(self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2,
                 time_width: int = 12, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.freq_masks = int(freq_masks)
        self.freq_width = int(freq_width)
        self.time_masks = int(time_masks)
        self.time_width = int(time_width)
        self.seed = seed
        self.seed_gen = keras.random.SeedGenerator(seed)

    def _mask(self, batch, length, n_masks, width):
        pos = ops.arange(length, dtype="float32")[None, :]
        keep = ops.ones((batch, length))
        for _ in range(n_masks):
            w = keras.random.uniform((batch, 1), 0, width + 1, seed=self.seed_gen)
            start = keras.random.uniform((batch, 1), 0, 1, seed=self.seed_gen) * (length - w)
            inside = ops.logical_and(pos >= ops.floor(start), pos < ops.floor(start) + ops.floor(w))
            keep = keep * (1.0 - ops.cast(inside, "float32"))
        return keep

    def call(self, inputs, training=None):
        if not training:
            return inputs
        shape = ops.shape(inputs)
        batch, frames, feats = shape[0], inputs.shape[1], inputs.shape[2]
        f_keep = self._mask(batch, feats, self.freq_masks, self.freq_width)[:, None, :]
        t_keep = self._mask(batch, frames, self.time_masks, self.time_width)[:, :, None]
        return inputs * ops.cast(f_keep * t_keep, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "freq_masks": self.freq_masks, "freq_width": self.freq_width,
                "time_masks": self.time_masks, "time_width": self.time_width, "seed": self.seed}
