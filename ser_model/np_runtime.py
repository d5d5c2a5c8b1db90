"""Pure-NumPy inference for our Keras bundles: no TensorFlow, no Keras, no code from the file.

``import tensorflow`` alone costs ~680 MB of RSS and seconds of start-up; the models we ship
are small, so a NumPy interpreter of the saved functional graph is enough for inference.

What it reads: the Keras native ``.keras`` zip, i.e. ``config.json`` (the functional graph)
and ``model.weights.h5`` (read with h5py). Weights are paired with layers exactly as Keras 3
saves them (``keras/src/saving/saving_lib.py``): each functional model's ``layers`` (its
operations that are Layers, in config order) are stored under
``layers/<snake_case(class name)>[_<n>]``, a layer's own variables under ``vars/0..k`` in
creation order, and sub-layers under their attribute name (``cell``, ``forward_layer``,
``backward_layer``, our AttentionPooling's ``hidden``/``score``). Every weight's shape is
checked against what the layer's config implies.

What it runs: only the whitelisted layer types in :data:`SUPPORTED_LAYERS` (InputLayer, nested
Functional models, the Keras layers and ops of ``_KERAS_LAYERS`` and our ser_model layers of
``_OUR_LAYERS``; that tuple is built from those dispatch tables, so it names exactly what runs),
implemented here in NumPy float32 with Keras 3 semantics at inference (``training=False``),
including Keras mask propagation (which layers consume, propagate or destroy the ``_keras_mask``).
That list is exactly the set of layers the shipped bundles use (tested in
tests/test_np_runtime.py), so a layer no shipped model needs is not kept here.

Against ONNX Runtime (``bench/runtime_onnx.py``, graphs converted with tf2onnx 1.17, one
thread, median per 3 s clip, 2-core shared machine, 2026-12-03): ser-crnn-v2 11.5-12.8 ms
here vs 6.4-6.8 ms, probabilities equal within 2e-7; the ser-v3 head 0.04 vs 0.03 ms.

Any other layer type, option or dtype policy raises :class:`UnsupportedModelError` (a
:class:`~ser_model.errors.BundleError`) naming it, so the caller can fall back to Keras.

Safety: nothing in the model file is ever executed or imported. This is stricter than Keras
``safe_mode=True``, which refuses Lambda layers but still imports and instantiates any
registered class the config names (custom layers run their own Python code); here a class
name only selects one of the fixed NumPy implementations above, and configs are read as data.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ser_model.errors import BundleError

F32 = np.float32

__all__ = ["SUPPORTED_LAYERS", "NumpyModel", "UnsupportedModelError", "load_numpy_model"]


class UnsupportedModelError(BundleError):
    """The model uses a layer type or option the NumPy runtime does not implement."""


# ---------------------------------------------------------------------------------------
# small helpers


def _snake(name: str) -> str:
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # sigmoid(x) = (1 + tanh(x / 2)) / 2: exact, overflow-free, and three cheap ufunc calls.
    y = np.tanh(x * F32(0.5))
    y *= F32(0.5)
    y += F32(0.5)
    return y


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0))).astype(F32, copy=False)


_ACTIVATIONS = {
    "linear": None,
    "relu": lambda x: np.maximum(x, 0, dtype=F32),
    "relu6": lambda x: np.clip(x, 0, 6).astype(F32, copy=False),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "softmax": _softmax,
    "hard_sigmoid": lambda x: (np.clip(x + 3.0, 0.0, 6.0) / 6.0).astype(F32, copy=False),
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "elu": _elu,
    "softplus": lambda x: np.logaddexp(x, 0).astype(F32, copy=False),
}


def _activation(spec: Any, where: str):
    name = spec
    if isinstance(spec, dict):  # {"module": "keras.activations", "class_name": "function", "config": "relu"}
        name = spec.get("config") if isinstance(spec.get("config"), str) else None
    if spec is None:
        name = "linear"
    if not isinstance(name, str) or name not in _ACTIVATIONS:
        raise UnsupportedModelError(f"{where}: activation {spec!r} is not supported by the NumPy runtime")
    return _ACTIVATIONS[name]


def _apply(fn, x: np.ndarray) -> np.ndarray:
    return x if fn is None else fn(x)


def _one(v: Any) -> Any:
    """Keras stores tuple params as lists: [5] -> 5."""
    if isinstance(v, (list, tuple)):
        if len(v) != 1:
            raise UnsupportedModelError(f"expected one value, got {v!r}")
        return v[0]
    return v


def _pad_amounts(length: int, window: int, stride: int, padding: str) -> tuple[int, int, int]:
    """(left, right, out_length) with TensorFlow's SAME/VALID rules."""
    if padding == "valid":
        return 0, 0, max(0, (length - window) // stride + 1)
    if padding == "same":
        out = -(-length // stride)
        total = max((out - 1) * stride + window - length, 0)
        return total // 2, total - total // 2, out
    raise UnsupportedModelError(f"padding {padding!r} is not supported by the NumPy runtime")


# ---------------------------------------------------------------------------------------
# weights


class _Weights:
    """The h5 group of one saved object: ``vars`` in order, and named sub-objects."""

    def __init__(self, group: Any, path: str) -> None:
        self.group = group
        self.path = path

    def vars(self) -> list[np.ndarray]:
        if self.group is None or "vars" not in self.group:
            return []
        g = self.group["vars"]
        return [np.asarray(g[str(i)][()], dtype=F32) for i in range(len(g))]

    def child(self, name: str) -> _Weights:
        if self.group is None or name not in self.group:  # stateless objects may have no group
            return _Weights(None, f"{self.path}/{name}")
        return _Weights(self.group[name], f"{self.path}/{name}")


def _expect(arrays: list[np.ndarray], shapes: list[tuple[int, ...]], where: str) -> list[np.ndarray]:
    got = [tuple(a.shape) for a in arrays]
    if got != [tuple(s) for s in shapes]:
        raise BundleError(f"model weights: {where} has weights {got}, its config implies {shapes}")
    return [np.ascontiguousarray(a, dtype=F32) for a in arrays]


def _conv_weights(cfg: dict, weights: _Weights, where: str, kind: str, window: tuple[int, ...]):
    """(activation, kernel, bias) of a channels-last, ungrouped Conv1D/Conv2D with this kernel
    ``window``. The kernel comes as (prod(window) * C_in, filters): im2col columns hold the
    window positions in order, each with its C_in channels, which is the saved kernel's layout."""
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise UnsupportedModelError(f"{where}: {kind} data_format {cfg.get('data_format')!r} is not supported")
    if int(cfg.get("groups", 1)) != 1:
        raise UnsupportedModelError(f"{where}: grouped {kind} is not supported by the NumPy runtime")
    fn = _activation(cfg.get("activation"), where)
    filters = int(cfg["filters"])
    ws = weights.vars()
    if not ws:
        raise BundleError(f"model weights: {weights.path} has no kernel")
    c_in = ws[0].shape[-2] if ws[0].ndim == len(window) + 2 else -1
    shapes = [(*window, c_in, filters)] + ([(filters,)] if cfg.get("use_bias", True) else [])
    ws = _expect(ws, shapes, where)
    kernel = np.ascontiguousarray(ws[0].reshape(int(np.prod(window)) * c_in, filters))
    return fn, kernel, ws[1] if len(ws) > 1 else None


def _bias_act(y: np.ndarray, bias: np.ndarray | None, fn) -> np.ndarray:
    """``fn(y + bias)``, in place where possible."""
    if bias is not None:
        y += bias
    return _apply(fn, y)


# ---------------------------------------------------------------------------------------
# layers
#
# Each layer: ``call(inputs, mask)`` -> output; ``inputs`` is the first positional argument
# (a list for merge layers), ``mask`` the Keras mask handed to call (None when its call has
# no mask argument). ``mask_rule`` says what mask the output carries (see Layer.__call__ and
# each layer's compute_mask in keras/src/layers):
#   "propagate": supports_masking with the default compute_mask -> the previous mask
#   "rnn":       the mask when return_sequences, else None
#   "merge":     OR of the inputs' masks, None if any is None
#   "none":      the layer does not support masking (or returns None): no mask
#   "same":      the layer returns its input tensor object itself, so the mask stays on it
#   "own":       the layer sets its output mask itself (Masking, Functional)


class _Layer:
    uses_mask = False  # its call() has a `mask` argument
    mask_rule = "none"
    n_args = 1

    def __init__(self, name: str, cfg: dict, weights: _Weights, where: str) -> None:
        self.name = name
        self.where = where

    def call(self, x: Any, mask: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def own_mask(self, x: Any, out: Any, mask: Any) -> Any:  # for mask_rule "own"
        return None


class _Identity(_Layer):
    mask_rule = "propagate"

    def call(self, x, mask):
        return x


class _SpecAugment(_Identity):
    mask_rule = "same"  # no supports_masking, but returns `inputs` itself at inference


class _Activation(_Layer):
    mask_rule = "propagate"

    def __init__(self, name, cfg, weights, where):
        super().__init__(name, cfg, weights, where)
        self.fn = _activation(cfg.get("activation"), where)

    def call(self, x, mask):
        return _apply(self.fn, x)


class _Dense(_Layer):
    mask_rule = "propagate"

    def __init__(self, name, cfg, weights, where, *, in_dim: int | None = None):
        super().__init__(name, cfg, weights, where)
        for key in ("lora_rank", "quantization_config"):
            if cfg.get(key):
                raise UnsupportedModelError(f"{where}: Dense option {key} is not supported by the NumPy runtime")
        self.fn = _activation(cfg.get("activation"), where)
        units = int(cfg["units"])
        ws = weights.vars()
        if not ws:
            raise BundleError(f"model weights: {weights.path} has no kernel")
        n_in = ws[0].shape[0]
        shapes = [(n_in, units)] + ([(units,)] if cfg.get("use_bias", True) else [])
        ws = _expect(ws, shapes, where)
        self.kernel = ws[0]
        self.bias = ws[1] if len(ws) > 1 else None

    def call(self, x, mask):
        return _bias_act(x @ self.kernel, self.bias, self.fn)


class _Conv1D(_Layer):
    def __init__(self, name, cfg, weights, where):
        super().__init__(name, cfg, weights, where)
        self.k = int(_one(cfg["kernel_size"]))
        self.stride = int(_one(cfg.get("strides", 1)))
        self.dilation = int(_one(cfg.get("dilation_rate", 1)))
        self.padding = cfg.get("padding", "valid")
        if self.padding not in ("same", "valid", "causal"):
            raise UnsupportedModelError(f"{where}: Conv1D padding {self.padding!r} is not supported")
        self.fn, self.kernel, self.bias = _conv_weights(cfg, weights, where, "Conv1D", (self.k,))
        self.filters = self.kernel.shape[1]

    def call(self, x, mask):
        b, t, c = x.shape
        span = (self.k - 1) * self.dilation + 1
        if self.padding == "causal":
            left, right = span - 1, 0
            out_len = (t + left - span) // self.stride + 1
        else:
            left, right, out_len = _pad_amounts(t, span, self.stride, self.padding)
        if self.k == 1 and self.stride == 1:
            y = x.reshape(b * t, c) @ self.kernel
        else:
            if left or right:
                xp = np.zeros((b, t + left + right, c), dtype=F32)
                xp[:, left : left + t] = x
            else:
                xp = x
            # im2col: column block j holds the input shifted by j * dilation (contiguous copies).
            cols = np.empty((b, out_len, self.k * c), dtype=F32)
            last = (out_len - 1) * self.stride + 1
            for j in range(self.k):
                start = j * self.dilation
                cols[:, :, j * c : (j + 1) * c] = xp[:, start : start + last : self.stride]
            y = cols.reshape(b * out_len, self.k * c) @ self.kernel
        return _bias_act(y.reshape(b, out_len, self.filters), self.bias, self.fn)


class _BatchNorm(_Layer):
    uses_mask = True  # only used for the training statistics
    mask_rule = "propagate"

    def __init__(self, name, cfg, weights, where):
        super().__init__(name, cfg, weights, where)
        axis = cfg.get("axis", -1)
        if isinstance(axis, list):
            axis = _one(axis)
        if cfg.get("renorm"):
            raise UnsupportedModelError(f"{where}: BatchNormalization renorm is not supported")
        ws = weights.vars()
        scale, center = cfg.get("scale", True), cfg.get("center", True)
        if not ws:
            raise BundleError(f"model weights: {weights.path} has no variables")
        n = ws[-1].shape[0]
        ws = _expect(ws, [(n,)] * (2 + int(scale) + int(center)), where)
        i = 0
        gamma = ws[i] if scale else np.ones(n, F32)
        i += int(scale)
        beta = ws[i] if center else np.zeros(n, F32)
        i += int(center)
        mean, var = ws[i], ws[i + 1]
        eps = float(cfg.get("epsilon", 1e-3))
        self.axis = int(axis)
        inv = (1.0 / np.sqrt(var + F32(eps))).astype(F32) * gamma
        self.mul = inv.astype(F32)
        self.add = (beta - mean * inv).astype(F32)

    def call(self, x, mask):
        if self.axis not in (-1, x.ndim - 1):
            raise UnsupportedModelError(f"{self.where}: BatchNormalization axis {self.axis} is not supported")
        return x * self.mul + self.add


class _Pool1D(_Layer):
    def __init__(self, name, cfg, weights, where, *, kind: str):
        super().__init__(name, cfg, weights, where)
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise UnsupportedModelError(f"{where}: pooling data_format {cfg.get('data_format')!r} is not supported")
        self.p = int(_one(cfg["pool_size"]))
        strides = cfg.get("strides")
        self.s = int(_one(strides)) if strides is not None else self.p
        self.padding = cfg.get("padding", "valid")
        _pad_amounts(1, 1, 1, self.padding)  # validates
        self.kind = kind
        self._counts: dict[int, np.ndarray] = {}

    def call(self, x, mask):
        b, t, c = x.shape
        left, right, out_len = _pad_amounts(t, self.p, self.s, self.padding)
        fill = -np.inf if self.kind == "max" else 0.0
        if left or right:
            xp = np.full((b, t + left + right, c), fill, dtype=F32)
            xp[:, left : left + t] = x
        else:
            xp = x
        if self.p == self.s and xp.shape[1] >= out_len * self.p:
            win = xp[:, : out_len * self.p].reshape(b, out_len, self.p, c)
            red = win.max(axis=2) if self.kind == "max" else win.sum(axis=2)
        else:
            win = np.lib.stride_tricks.sliding_window_view(xp, self.p, axis=1)[:, :: self.s][:, :out_len]
            red = win.max(axis=-1) if self.kind == "max" else win.sum(axis=-1)
        if self.kind == "max":
            return red.astype(F32, copy=False)
        counts = self._counts.get(t)
        if counts is None:  # TF's avg_pool SAME counts only the real (unpadded) elements
            ones = np.zeros(t + left + right, dtype=F32)
            ones[left : left + t] = 1.0
            counts = np.array([ones[i * self.s : i * self.s + self.p].sum() for i in range(out_len)], dtype=F32)
            self._counts[t] = counts
        return (red / counts[None, :, None]).astype(F32, copy=False)


class _GlobalAvgPool1D(_Layer):
    uses_mask = True
    mask_rule = "none"  # compute_mask returns None

    def __init__(self, name, cfg, weights, where):
        super().__init__(name, cfg, weights, where)
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise UnsupportedModelError(f"{where}: GlobalAveragePooling1D channels_first is not supported")
        self.keepdims = bool(cfg.get("keepdims", False))

    def call(self, x, mask):
        if mask is None:
            return x.mean(axis=1, keepdims=self.keepdims)
        m = mask.astype(bool)[:, :, None]
        fm = m.astype(F32)
        num = np.where(m, x, F32(0)).sum(axis=1, keepdims=self.keepdims)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (num / fm.sum(axis=1, keepdims=self.keepdims)).astype(F32)


class _Masking(_Layer):
    mask_rule = "own"

    def __init__(self, name, cfg, weights, where):
        super().__init__(name, cfg, weights, where)
        self.value = F32(cfg.get("mask_value", 0.0))

    def call(self, x, mask):
        keep = np.any(x != self.value, axis=-1, keepdims=True)
        return np.where(keep, x, F32(0)).astype(F32)

    def own_mask(self, x, out, mask):
        return np.any(x != self.value, axis=-1)


class _Merge(_Layer):
    uses_mask = True
    mask_rule = "merge"

    def __init__(self, name, cfg, weights, where, *, op: str):
        super().__init__(name, cfg, weights, where)
        self.op = op

    def call(self, xs, mask):
        if not isinstance(xs, list) or not xs:
            raise BundleError(f"{self.where}: a merge layer needs a list of inputs")
        out = xs[0].copy()
        for x in xs[1:]:
            out += x
        if self.op == "average":
            out /= F32(len(xs))
        return out


class _FrameMask(_Layer):
    """ser_model.layers.FrameMask: 1.0 where any feature of the frame is non-zero."""

    def call(self, x, mask):
        return np.any(x != 0.0, axis=-1, keepdims=True).astype(F32)


class _AttentionPooling(_Layer):
    """ser_model.layers.AttentionPooling (attentive statistics pooling), same math."""

    def __init__(self, name, cfg, weights, where):
        super().__init__(name, cfg, weights, where)
        units = int(cfg.get("units", 64))
        self.with_std = bool(cfg.get("with_std", True))
        h = weights.child("hidden").vars()
        s = weights.child("score").vars()
        c = h[0].shape[0] if h else -1
        self.wh, self.bh = _expect(h, [(c, units), (units,)], f"{where}/hidden")
        self.ws, self.bs = _expect(s, [(units, 1), (1,)], f"{where}/score")
        self.ws_vec = np.ascontiguousarray(self.ws[:, 0])

    def call(self, xs, mask):
        x, m = xs
        hidden = np.tanh(x @ self.wh + self.bh)
        logits = (hidden @ self.ws_vec)[..., None] + self.bs  # (B, T, 1)
        logits = logits + (F32(1.0) - m) * F32(-1e9)
        w = _softmax(logits, axis=1)
        mean = (w * x).sum(axis=1)
        if not self.with_std:
            return mean
        var = (w * (x * x)).sum(axis=1) - mean * mean
        std = np.sqrt(np.maximum(var, F32(1e-6)))
        return np.concatenate([mean, std], axis=-1).astype(F32)


def _pair(v: Any, where: str) -> tuple[int, int]:
    """Keras stores 2-D params as [a, b] (or one int for both)."""
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise UnsupportedModelError(f"{where}: expected two values, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


class _Conv2D(_Layer):
    """Conv2D, channels_last, stride 1, no dilation or groups: im2col then one matmul."""

    def __init__(self, name, cfg, weights, where):
        super().__init__(name, cfg, weights, where)
        if _pair(cfg.get("strides", 1), where) != (1, 1) or _pair(cfg.get("dilation_rate", 1), where) != (1, 1):
            raise UnsupportedModelError(f"{where}: strided or dilated Conv2D is not supported by the NumPy runtime")
        self.kh, self.kw = _pair(cfg["kernel_size"], where)
        self.padding = cfg.get("padding", "valid")
        _pad_amounts(1, 1, 1, self.padding)  # validates
        self.fn, self.kernel, self.bias = _conv_weights(cfg, weights, where, "Conv2D", (self.kh, self.kw))
        self.filters = self.kernel.shape[1]

    def call(self, x, mask):
        b, h, w, c = x.shape
        top, bottom, out_h = _pad_amounts(h, self.kh, 1, self.padding)
        left, right, out_w = _pad_amounts(w, self.kw, 1, self.padding)
        if top or bottom or left or right:
            xp = np.zeros((b, h + top + bottom, w + left + right, c), dtype=F32)
            xp[:, top : top + h, left : left + w] = x
        else:
            xp = x
        cols = np.empty((b, out_h, out_w, self.kh * self.kw * c), dtype=F32)
        for i in range(self.kh):
            for j in range(self.kw):
                k = (i * self.kw + j) * c
                cols[..., k : k + c] = xp[:, i : i + out_h, j : j + out_w]
        y = (cols.reshape(-1, cols.shape[-1]) @ self.kernel).reshape(b, out_h, out_w, self.filters)
        return _bias_act(y, self.bias, self.fn)


class _MaxPool2D(_Layer):
    """MaxPooling2D, channels_last, strides equal to the pool size."""

    def __init__(self, name, cfg, weights, where):
        super().__init__(name, cfg, weights, where)
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise UnsupportedModelError(f"{where}: pooling data_format {cfg.get('data_format')!r} is not supported")
        self.p = _pair(cfg["pool_size"], where)
        strides = cfg.get("strides")
        if strides is not None and _pair(strides, where) != self.p:
            raise UnsupportedModelError(f"{where}: MaxPooling2D strides other than the pool size are not supported")
        self.padding = cfg.get("padding", "valid")
        _pad_amounts(1, 1, 1, self.padding)  # validates

    def call(self, x, mask):
        b, h, w, c = x.shape
        (ph, pw) = self.p
        top, _bottom, out_h = _pad_amounts(h, ph, ph, self.padding)
        left, _right, out_w = _pad_amounts(w, pw, pw, self.padding)
        xp = np.full((b, out_h * ph, out_w * pw, c), -np.inf, dtype=F32)
        hh, ww = min(h, out_h * ph - top), min(w, out_w * pw - left)
        xp[:, top : top + hh, left : left + ww] = x[:, :hh, :ww]
        return xp.reshape(b, out_h, ph, out_w, pw, c).max(axis=(2, 4))


class _Reshape(_Layer):
    def __init__(self, name, cfg, weights, where):
        super().__init__(name, cfg, weights, where)
        self.shape = tuple(int(v) for v in cfg["target_shape"])

    def call(self, x, mask):
        return x.reshape((x.shape[0], *self.shape))


class _FeatureSlice(_Layer):
    """ser_model.layers.FeatureSlice: columns start:stop of the last axis."""

    def __init__(self, name, cfg, weights, where):
        super().__init__(name, cfg, weights, where)
        self.start, self.stop = int(cfg.get("start", 0)), int(cfg.get("stop", 1))

    def call(self, x, mask):
        return np.ascontiguousarray(x[..., self.start : self.stop])


class _NotEqual(_Layer):
    n_args = 2

    def call(self, args, mask):
        a, b = args
        return np.not_equal(a, b)


class _Any(_Layer):
    def __init__(self, name, cfg, weights, where):
        super().__init__(name, cfg, weights, where)
        axis = cfg.get("axis")
        self.axis = tuple(axis) if isinstance(axis, list) else axis
        self.keepdims = bool(cfg.get("keepdims", False))

    def call(self, x, mask):
        return np.any(x, axis=self.axis, keepdims=self.keepdims)


class _RNN(_Layer):
    """GRU / LSTM with Keras 3 semantics (keras/src/backend/tensorflow/rnn.py, *_cell call)."""

    uses_mask = True
    mask_rule = "rnn"

    def __init__(self, name, cfg, weights, where, *, kind: str, force_zero_output: bool | None = None):
        super().__init__(name, cfg, weights, where)
        for key in ("return_state", "stateful"):
            if cfg.get(key):
                raise UnsupportedModelError(f"{where}: {kind} {key}=True is not supported by the NumPy runtime")
        self.kind = kind
        self.units = u = int(cfg["units"])
        self.act = _activation(cfg.get("activation", "tanh"), where) or (lambda v: v)
        self.rec_act = _activation(cfg.get("recurrent_activation", "sigmoid"), where) or (lambda v: v)
        self.return_sequences = bool(cfg.get("return_sequences", False))
        self.go_backwards = bool(cfg.get("go_backwards", False))
        zero = cfg.get("zero_output_for_mask", False) if force_zero_output is None else force_zero_output
        self.zero_output_for_mask = bool(zero)
        use_bias = bool(cfg.get("use_bias", True))
        cell = weights.child("cell")
        ws = cell.vars()
        if not ws:
            raise BundleError(f"model weights: {cell.path} has no kernel")
        n_in = ws[0].shape[0]
        gates = 3 if kind == "gru" else 4
        self.reset_after = bool(cfg.get("reset_after", True)) if kind == "gru" else False
        shapes = [(n_in, gates * u), (u, gates * u)]
        if use_bias:
            shapes.append((2, gates * u) if self.reset_after else (gates * u,))
        ws = _expect(ws, shapes, where)
        self.kernel, self.rec_kernel = ws[0], ws[1]
        zeros = np.zeros(gates * u, F32)
        if not use_bias:
            self.in_bias, self.rec_bias = zeros, zeros
        elif self.reset_after:
            self.in_bias, self.rec_bias = ws[2][0], ws[2][1]
        else:
            self.in_bias, self.rec_bias = ws[2], zeros
        if kind == "gru" and not self.reset_after:
            self.rec_zr = np.ascontiguousarray(self.rec_kernel[:, : 2 * u])
            self.rec_h = np.ascontiguousarray(self.rec_kernel[:, 2 * u :])

    def _step(self, xw_t, h, c):
        u = self.units
        if self.kind == "lstm":
            z = h @ self.rec_kernel
            z += xw_t
            g = self.rec_act(z)  # i, f, (unused), o in one call; the cell input uses act
            c_new = g[:, u : 2 * u] * c + g[:, :u] * self.act(z[:, 2 * u : 3 * u])
            return g[:, 3 * u :] * self.act(c_new), c_new
        if self.reset_after:
            rec = h @ self.rec_kernel + self.rec_bias
            zr = self.rec_act(xw_t[:, : 2 * u] + rec[:, : 2 * u])
            z, r = zr[:, :u], zr[:, u:]
            hh = self.act(xw_t[:, 2 * u :] + r * rec[:, 2 * u :])
        else:
            zr = self.rec_act(xw_t[:, : 2 * u] + h @ self.rec_zr)
            z, r = zr[:, :u], zr[:, u:]
            hh = self.act(xw_t[:, 2 * u :] + (r * h) @ self.rec_h)
        return z * h + (1.0 - z) * hh, c

    def call(self, x, mask):
        b, t, _ = x.shape
        u = self.units
        xw = (x.reshape(b * t, -1) @ self.kernel + self.in_bias).reshape(b, t, -1)
        h = np.zeros((b, u), F32)
        c = np.zeros((b, u), F32) if self.kind == "lstm" else None
        out = np.zeros((b, u), F32)
        outs = np.zeros((b, t, u), F32) if self.return_sequences else None
        order = range(t - 1, -1, -1) if self.go_backwards else range(t)
        m = None if mask is None else np.asarray(mask).astype(bool).reshape(b, t)
        single = b == 1
        zero = np.zeros((b, u), F32)
        for i, step in enumerate(order):
            if m is not None and single and not m[0, step]:
                # Keras keeps the states and outputs the previous output (or zeros).
                if self.zero_output_for_mask:
                    out = zero
            else:
                h_new, c_new = self._step(xw[:, step], h, c)
                if m is None or single:
                    h, c, out = h_new, c_new, h_new
                else:
                    keep = m[:, step][:, None]
                    out = np.where(keep, h_new, zero if self.zero_output_for_mask else out)
                    h = np.where(keep, h_new, h)
                    if c is not None:
                        c = np.where(keep, c_new, c)
            if outs is not None:
                outs[:, i] = out
        return outs if outs is not None else out.astype(F32, copy=False)


class _Bidirectional(_Layer):
    uses_mask = True
    mask_rule = "rnn"

    def __init__(self, name, cfg, weights, where):
        super().__init__(name, cfg, weights, where)
        self.merge_mode = cfg.get("merge_mode", "concat")
        if self.merge_mode not in ("concat", "sum", "ave", "mul"):
            raise UnsupportedModelError(f"{where}: Bidirectional merge_mode {self.merge_mode!r} is not supported")
        inner = cfg["layer"]
        kind = _rnn_kind(inner, where)
        fwd_cfg = dict(inner["config"])
        back = cfg.get("backward_layer")
        if back is not None:
            bkind = _rnn_kind(back, where)
            back_cfg = dict(back["config"])
        else:
            bkind, back_cfg = kind, dict(fwd_cfg, go_backwards=not fwd_cfg.get("go_backwards", False))
        # Bidirectional.__init__ forces zero_output_for_mask = return_sequences on both layers.
        self.fwd = _RNN(name, fwd_cfg, weights.child("forward_layer"), where + "/forward", kind=kind,
                        force_zero_output=bool(fwd_cfg.get("return_sequences", False)))
        self.bwd = _RNN(name, back_cfg, weights.child("backward_layer"), where + "/backward", kind=bkind,
                        force_zero_output=bool(back_cfg.get("return_sequences", False)))
        if self.fwd.go_backwards == self.bwd.go_backwards:
            raise BundleError(f"{where}: forward and backward layers have the same go_backwards")
        self.return_sequences = self.fwd.return_sequences

    def call(self, x, mask):
        y = self.fwd.call(x, mask)
        y_rev = self.bwd.call(x, mask)
        if self.return_sequences:
            y_rev = y_rev[:, ::-1]
        if self.merge_mode == "concat":
            return np.concatenate([y, y_rev], axis=-1)
        if self.merge_mode == "sum":
            return y + y_rev
        if self.merge_mode == "ave":
            return (y + y_rev) / F32(2)
        return y * y_rev


def _rnn_kind(layer_cfg: dict, where: str) -> str:
    name = layer_cfg.get("class_name")
    if name == "GRU" and _is_keras(layer_cfg):
        return "gru"
    if name == "LSTM" and _is_keras(layer_cfg):
        return "lstm"
    raise UnsupportedModelError(f"{where}: layer {name} is not supported by the NumPy runtime inside Bidirectional")


def _is_keras(layer_cfg: dict) -> bool:
    module = layer_cfg.get("module") or ""
    return module == "keras" or module.startswith("keras.")


def _is_ours(layer_cfg: dict) -> bool:
    return layer_cfg.get("module") == "ser_model.layers" or str(layer_cfg.get("registered_name", "")).startswith(
        "ser_model>"
    )


_KERAS_LAYERS = {
    "Conv1D": _Conv1D,
    "BatchNormalization": _BatchNorm,
    "Add": lambda n, c, w, wh: _Merge(n, c, w, wh, op="add"),
    "Average": lambda n, c, w, wh: _Merge(n, c, w, wh, op="average"),
    "Activation": _Activation,
    "Dense": _Dense,
    "MaxPooling1D": lambda n, c, w, wh: _Pool1D(n, c, w, wh, kind="max"),
    "AveragePooling1D": lambda n, c, w, wh: _Pool1D(n, c, w, wh, kind="avg"),
    "GlobalAveragePooling1D": _GlobalAvgPool1D,
    "Dropout": _Identity,
    "SpatialDropout1D": _Identity,
    "SpatialDropout2D": _Identity,
    "Conv2D": _Conv2D,
    "MaxPooling2D": _MaxPool2D,
    "Reshape": _Reshape,
    "Masking": _Masking,
    "GRU": lambda n, c, w, wh: _RNN(n, c, w, wh, kind="gru"),
    "LSTM": lambda n, c, w, wh: _RNN(n, c, w, wh, kind="lstm"),
    "Bidirectional": _Bidirectional,
    "NotEqual": _NotEqual,
    "Any": _Any,
}
_OUR_LAYERS = {"SpecAugment": _SpecAugment, "FrameMask": _FrameMask, "AttentionPooling": _AttentionPooling,
               "FeatureSlice": _FeatureSlice}
_OPS = {"NotEqual", "Any"}  # keras.src.ops operations: not Layers, so not in the saved weights

#: Every layer class name the runtime runs: the one list, read from the dispatch in
#: ``_Functional._make`` (InputLayer and Functional are handled there, the rest by the tables).
SUPPORTED_LAYERS: tuple[str, ...] = ("InputLayer", "Functional", *_KERAS_LAYERS, *_OUR_LAYERS)


def _check_dtype(cfg: dict, where: str) -> None:
    dtype = cfg.get("dtype")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    if dtype not in (None, "float32"):
        raise UnsupportedModelError(f"{where}: dtype policy {dtype!r} is not supported by the NumPy runtime")


# ---------------------------------------------------------------------------------------
# the functional graph


class _Functional(_Layer):
    """A keras Functional model run node by node in a precomputed order."""

    uses_mask = True
    mask_rule = "own"

    def __init__(self, name: str, cfg: dict, weights: _Weights, where: str) -> None:
        super().__init__(name, cfg, weights, where)
        self.layers: dict[str, _Layer] = {}
        self.input_names: list[str] = []
        self.input_shapes: list[tuple] = []
        nodes: dict[str, list[dict]] = {}
        used: dict[str, int] = {}
        for lc in cfg["layers"]:
            cls = lc.get("class_name")
            lname = lc.get("name") or lc["config"]["name"]
            lwhere = f"{where}/{lname}"
            lcfg = lc.get("config") or {}
            is_op = cls in _OPS and (lc.get("module") or "").startswith("keras.src.ops")
            if not is_op:  # Layers are saved under layers/<snake_case(class)>[_n], in order
                key = _snake(cls or "")
                if key in used:
                    used[key] += 1
                    key = f"{key}_{used[key]}"
                else:
                    used[key] = 0
                lw = weights.child("layers").child(key)
            else:
                lw = _Weights(None, lwhere)
            self.layers[lname] = self._make(cls, lc, lcfg, lw, lwhere, is_op)
            nodes[lname] = lc.get("inbound_nodes") or []
            if cls == "InputLayer":
                self.input_shapes.append(tuple(lcfg.get("batch_shape") or ()))
        self.inputs_spec = _history_list(cfg["input_layers"])
        self.outputs_spec = _history_list(cfg["output_layers"])
        self.input_names = [h[0] for h in self.inputs_spec]
        self.plan = self._plan(nodes)

    def _make(self, cls: str, lc: dict, lcfg: dict, lw: _Weights, where: str, is_op: bool) -> _Layer:
        if cls == "InputLayer" and _is_keras(lc):
            if lcfg.get("sparse") or lcfg.get("ragged"):
                raise UnsupportedModelError(f"{where}: sparse/ragged inputs are not supported by the NumPy runtime")
            _check_dtype(lcfg, where)
            return _Identity(lc["name"], lcfg, lw, where)
        if cls in ("Functional", "Model") and _is_keras(lc):
            return _Functional(lc["name"], lcfg, lw, where)
        if is_op:
            return _KERAS_LAYERS[cls](lc["name"], lcfg, lw, where)
        if cls in _KERAS_LAYERS and cls not in _OPS and _is_keras(lc):
            _check_dtype(lcfg, where)
            return _KERAS_LAYERS[cls](lc["name"], lcfg, lw, where)
        if cls in _OUR_LAYERS and _is_ours(lc):
            _check_dtype(lcfg, where)
            return _OUR_LAYERS[cls](lc["name"], lcfg, lw, where)
        origin = lc.get("registered_name") or lc.get("module") or "?"
        raise UnsupportedModelError(
            f"{where}: layer {cls} is not supported by the NumPy runtime (from {origin})"
        )

    def _plan(self, nodes: dict[str, list[dict]]) -> list[tuple[str, int, Any, Any]]:
        """Execution order: (layer name, node index, args template, mask template)."""
        ready = {(n, 0) for n in self.input_names}
        pending = [(lname, i, node) for lname, ns in nodes.items() for i, node in enumerate(ns)]
        plan = []
        while pending:
            progressed = False
            rest = []
            for lname, i, node in pending:
                deps = _refs(node)
                if all((d[0], d[1]) in ready for d in deps):
                    kwargs = node.get("kwargs") or {}
                    for key in kwargs:
                        if key not in ("mask", "training"):
                            raise UnsupportedModelError(
                                f"{self.where}/{lname}: call argument {key!r} is not supported by the NumPy runtime"
                            )
                    plan.append((lname, i, node.get("args") or [], kwargs.get("mask")))
                    ready.add((lname, i))
                    progressed = True
                else:
                    rest.append((lname, i, node))
            if not progressed:
                raise BundleError(f"{self.where}: the model graph has unresolvable inputs")
            pending = rest
        for h in self.outputs_spec:
            if (h[0], h[1]) not in ready:
                raise BundleError(f"{self.where}: output {h[0]} is never computed")
        return plan

    def run(self, inputs: list[np.ndarray], masks: list[Any]) -> tuple[list[np.ndarray], list[Any]]:
        values: dict[tuple[str, int, int], tuple[Any, Any]] = {}
        for h, x, m in zip(self.inputs_spec, inputs, masks):
            values[(h[0], 0, 0)] = (x, m)
        for lname, idx, args, mask_tpl in self.plan:
            layer = self.layers[lname]
            resolved = _resolve(args, values)
            explicit = _resolve(mask_tpl, values) if mask_tpl is not None else None
            explicit = None if explicit is None else _value(explicit)
            first = resolved[0] if resolved else None
            first_val = _value(first)
            first_mask = _mask(first)
            call_mask = None
            if layer.uses_mask:
                call_mask = explicit if explicit is not None else first_mask
            previous = explicit if explicit is not None else first_mask
            if layer.n_args == 2:
                out = layer.call([first_val, _value(resolved[1])], None)
                out_mask = None
            elif isinstance(layer, _Functional):
                xs = first_val if isinstance(first_val, list) else [first_val]
                ms = call_mask if isinstance(call_mask, list) else [call_mask] * len(xs)
                outs, out_masks = layer.run(xs, ms)
                out, out_mask = outs[0], out_masks[0]
                if len(outs) != 1:
                    raise UnsupportedModelError(f"{layer.where}: nested models with several outputs are not supported")
            else:
                out = layer.call(first_val, call_mask)
                out_mask = _out_mask(layer, first_val, out, previous, first_mask)
            values[(lname, idx, 0)] = (out, out_mask)
        got = [values[(h[0], h[1], h[2])] for h in self.outputs_spec]
        return [g[0] for g in got], [g[1] for g in got]


class _Const:
    """A constant call argument (e.g. the 0.0 of ``not_equal(x, 0.0)``)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _history_list(spec: Any) -> list[tuple[str, int, int]]:
    if isinstance(spec, list) and len(spec) == 3 and isinstance(spec[0], str):
        return [(spec[0], int(spec[1]), int(spec[2]))]
    return [(s[0], int(s[1]), int(s[2])) for s in spec]


def _refs(obj: Any) -> list[tuple[str, int, int]]:
    found = []
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            h = obj["config"]["keras_history"]
            return [(h[0], int(h[1]), int(h[2]))]
        for v in obj.values():
            found += _refs(v)
    elif isinstance(obj, list):
        for v in obj:
            found += _refs(v)
    return found


def _resolve(obj: Any, values: dict) -> Any:
    """Args template -> (value, mask) pairs for tensors (lists stay lists); constants as is."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            h = obj["config"]["keras_history"]
            return values[(h[0], int(h[1]), int(h[2]))]
        raise UnsupportedModelError(f"call argument {obj.get('class_name')!r} is not supported by the NumPy runtime")
    if isinstance(obj, list):
        return [_resolve(v, values) for v in obj]
    if isinstance(obj, (int, float, bool)) or obj is None:
        return _Const(obj)
    raise UnsupportedModelError(f"call argument {obj!r} is not supported by the NumPy runtime")


def _value(r: Any) -> Any:
    if isinstance(r, _Const):
        return F32(r.value) if isinstance(r.value, (int, float)) and not isinstance(r.value, bool) else r.value
    if isinstance(r, tuple):
        return r[0]
    if isinstance(r, list):
        return [_value(v) for v in r]
    return r


def _mask(r: Any) -> Any:
    if isinstance(r, tuple):
        return r[1]
    if isinstance(r, list):
        return [_mask(v) for v in r]
    return None


def _out_mask(layer: _Layer, x: Any, out: Any, previous: Any, first_mask: Any) -> Any:
    rule = layer.mask_rule
    if rule == "propagate":
        if isinstance(previous, list):
            return previous[0]
        return previous
    if rule == "rnn":
        m = previous[0] if isinstance(previous, list) else previous
        return m if getattr(layer, "return_sequences", False) else None
    if rule == "merge":
        ms = previous if isinstance(previous, list) else [previous]
        if any(m is None for m in ms):
            return None
        acc = ms[0]
        for m in ms[1:]:
            acc = np.logical_or(acc, m)
        return acc
    if rule == "same":
        return first_mask
    if rule == "own":
        return layer.own_mask(x, out, previous)
    return None


# ---------------------------------------------------------------------------------------
# public


class NumpyModel:
    """A loaded model: ``model(x)`` / ``model.predict(x)`` -> np.ndarray (float32)."""

    def __init__(self, graph: _Functional, path: str) -> None:
        self._graph = graph
        self.path = path
        self.input_shape = graph.input_shapes[0] if graph.input_shapes else ()
        if len(graph.inputs_spec) != 1 or len(graph.outputs_spec) != 1:
            raise UnsupportedModelError(f"{path}: only models with one input and one output are supported")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=F32)
        outs, _ = self._graph.run([x], [None])
        return np.asarray(outs[0], dtype=F32)

    predict = __call__

    def submodels(self) -> dict[str, NumpyModel]:
        """The nested functional models at the top level (e.g. an ensemble's members), by name."""
        subs = {}
        for name, layer in self._graph.layers.items():
            if isinstance(layer, _Functional):
                subs[name] = NumpyModel(layer, f"{self.path}:{name}")
        return subs


def read_keras_archive(path: str | Path) -> tuple[dict, bytes]:
    """(config dict, bytes of model.weights.h5) from a Keras native ``.keras`` zip."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "config.json" not in names or "model.weights.h5" not in names:
                raise BundleError(f"{path}: not a Keras native model (config.json / model.weights.h5 missing)")
            config = json.loads(zf.read("config.json").decode("utf-8"))
            weights = zf.read("model.weights.h5")
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{path}: cannot read the Keras model: {err}") from err
    if not isinstance(config, dict):
        raise BundleError(f"{path}: config.json of the model is not an object")
    return config, weights


def load_numpy_model(path: str | Path) -> NumpyModel:
    """Load a ``.keras`` file for NumPy inference.

    Raises :class:`UnsupportedModelError` for a layer/option outside the whitelist and
    :class:`~ser_model.errors.BundleError` for an unreadable or inconsistent file.
    """
    import h5py

    config, weights = read_keras_archive(path)
    cls = config.get("class_name")
    if cls not in ("Functional", "Model") or not _is_keras(config):
        raise UnsupportedModelError(f"{path}: model class {cls} is not supported by the NumPy runtime")
    try:
        with h5py.File(io.BytesIO(weights), "r") as h5:
            graph = _Functional(config["config"].get("name", "model"), config["config"], _Weights(h5, ""), str(path))
    except (KeyError, TypeError, ValueError, IndexError, OSError) as err:
        if isinstance(err, BundleError):
            raise
        raise BundleError(f"{path}: cannot read the model for the NumPy runtime: {type(err).__name__}: {err}") from err
    return NumpyModel(graph, str(path))
