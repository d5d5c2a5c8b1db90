"""ser-v3 model input: one utterance vector, seen two ways, plus how much the profile knows.

For an utterance vector ``v`` (``encoder_features.utterance_vector``) and a speaker's
:class:`~ser_model.profile.VoiceProfile` of ``n`` clips, the head reads::

    [ (v - global_mean) / global_std,        # as an unadapted model would
      prior.standardise(v, profile),          # measured against the speaker (shrunk)
      log1p(n) / log1p(COUNT_SCALE) ]         # how far the profile can be trusted

With ``n = 0`` the second part is the population's standardisation, so a new voice meets a
model that was trained on exactly that case; training draws ``n`` from 0 to all of a
speaker's other clips (:func:`training_inputs`), never the clip itself.

Bundle config keys this module reads (``input.kind == "utterance"``): ``encoder`` (``name``,
``sha256``), ``feature_id``, ``normalization`` (``mean``, ``std``), ``prior`` (``mean``,
``var``, ``strength``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ser_model.errors import BundleError
from ser_model.profile import PopulationPrior, VoiceProfile

#: Profile size at which the count input reaches 1.
COUNT_SCALE = 20
#: Profile sizes drawn for each training clip (None: all the speaker's other clips).
TRAIN_KS: tuple[int | None, ...] = (0, 1, 3, 5, 10, 20, None)


def tempered(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of log(probs) / temperature (temperature scaling; the argmax is unchanged)."""
    logits = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def count_feature(n: int | np.ndarray) -> np.ndarray:
    return (np.log1p(np.asarray(n, dtype=np.float64)) / np.log1p(COUNT_SCALE)).astype(np.float64)


def input_dim(dim: int) -> int:
    return 2 * dim + 1


def model_input(vec: np.ndarray, *, norm_mean: np.ndarray, norm_std: np.ndarray, prior: PopulationPrior,
                profile: VoiceProfile | None) -> np.ndarray:
    """(1, 2*dim+1) float32 head input of one utterance vector."""
    v = np.asarray(vec, dtype=np.float64)
    n = 0 if profile is None else profile.count
    z_g = (v - norm_mean) / norm_std
    z_s = prior.standardise(v, profile)
    return np.concatenate([z_g, z_s, count_feature(n)[None]]).astype(np.float32)[None, :]


def fit_prior(vectors: np.ndarray, speakers: Sequence[str], *, strength: float) -> tuple[np.ndarray, np.ndarray,
                                                                                          PopulationPrior]:
    """(global mean, global std, prior) from training vectors: the prior's variance is the pooled
    within-speaker variance, each speaker weighing equally."""
    x = np.asarray(vectors, dtype=np.float64)
    spk = np.asarray(speakers)
    mean = x.mean(0)
    std = x.std(0) + 1e-6
    means, variances = [], []
    for s in np.unique(spk):
        xs = x[spk == s]
        means.append(xs.mean(0))
        variances.append(xs.var(0))
    prior = PopulationPrior(mean=np.mean(means, axis=0), var=np.mean(variances, axis=0) + 1e-8, strength=strength)
    return mean, std, prior


def _stats(rows: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    if len(rows) == 0:
        return 0, np.zeros(rows.shape[1]), np.zeros(rows.shape[1])
    m = rows.mean(0)
    return len(rows), m, ((rows - m) ** 2).sum(0)


def profile_draws(vectors: np.ndarray, speakers: Sequence[str], *, k: int | None, prior: PopulationPrior,
                  rng: np.random.Generator) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For each row in order, (n, mean, var): the shrunk statistics of a profile of ``k`` other
    clips of its speaker drawn by ``rng`` (k=None: all its other clips; fewer when the speaker
    has fewer)."""
    x = np.asarray(vectors, dtype=np.float64)
    spk = np.asarray(speakers)
    by_spk = {s: np.flatnonzero(spk == s) for s in np.unique(spk)}
    for i in range(len(x)):
        others = by_spk[spk[i]]
        others = others[others != i]
        if k is not None and k < len(others):
            others = rng.choice(others, size=k, replace=False)
        n, m, m2 = _stats(x[others]) if (k is None or k > 0) else _stats(x[:0])
        yield (n, *prior.speaker_stats(n, m, m2))


def adapted_inputs(vectors: np.ndarray, speakers: Sequence[str], *, k: int | None, norm_mean: np.ndarray,
                   norm_std: np.ndarray, prior: PopulationPrior, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                                    np.ndarray]:
    """Head inputs of every row, each with a profile of ``k`` other clips of its speaker
    (:func:`profile_draws`). Returns (X, n)."""
    x = np.asarray(vectors, dtype=np.float64)
    out = np.empty((len(x), input_dim(x.shape[1])), dtype=np.float32)
    counts = np.zeros(len(x), dtype=np.int64)
    for i, (n, mean_s, var_s) in enumerate(profile_draws(x, speakers, k=k, prior=prior, rng=rng)):
        out[i, : x.shape[1]] = (x[i] - norm_mean) / norm_std
        out[i, x.shape[1] : -1] = (x[i] - mean_s) / np.sqrt(var_s + 1e-6)
        out[i, -1] = count_feature(n)
        counts[i] = n
    return out, counts


def training_inputs(vectors: np.ndarray, speakers: Sequence[str], labels: np.ndarray, *, norm_mean: np.ndarray,
                    norm_std: np.ndarray, prior: PopulationPrior, seed: int,
                    ks: Sequence[int | None] = TRAIN_KS) -> tuple[np.ndarray, np.ndarray]:
    """Every training row once per profile size in ``ks``, stacked: (X, y)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k in ks:
        x, _ = adapted_inputs(vectors, speakers, k=k, norm_mean=norm_mean, norm_std=norm_std, prior=prior, rng=rng)
        xs.append(x)
        ys.append(np.asarray(labels))
    return np.concatenate(xs), np.concatenate(ys)


def config_section(norm_mean: np.ndarray, norm_std: np.ndarray, prior: PopulationPrior) -> dict[str, Any]:
    return {
        "normalization": {"mean": [float(v) for v in norm_mean], "std": [float(v) for v in norm_std]},
        "prior": {"mean": [float(v) for v in prior.mean], "var": [float(v) for v in prior.var],
                  "strength": float(prior.strength)},
    }


def read_config(config: Mapping[str, Any], where: str) -> tuple[np.ndarray, np.ndarray, PopulationPrior]:
    """(global mean, global std, prior) from a ser-v3 bundle config; BundleError when malformed."""
    from ser_model.errors import SerError

    try:
        norm = config["normalization"]
        mean = np.asarray(norm["mean"], dtype=np.float64)
        std = np.asarray(norm["std"], dtype=np.float64)
        p = config["prior"]
        prior = PopulationPrior(mean=np.asarray(p["mean"], dtype=np.float64),
                                var=np.asarray(p["var"], dtype=np.float64), strength=float(p["strength"]))
    except (KeyError, TypeError, ValueError, SerError) as err:
        raise BundleError(f"{where}: bad ser-v3 normalisation/prior in config.json: {err}") from None
    if mean.shape != std.shape or mean.shape != prior.mean.shape:
        raise BundleError(f"{where}: normalisation and prior lengths differ")
    return mean, std, prior
