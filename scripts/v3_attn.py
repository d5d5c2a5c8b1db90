"""ser-v3 experiment (not shipped): attention pooling over the Whisper encoder frames, on v3_cv's protocol.

Same 5-fold RAVDESS-actor CV, TESS only in training, same adapted protocol (each test clip with a
profile of ``adapt_k`` other clips of its speaker, profile draws from ``default_rng(eval_seed + fold
+ 1000)`` exactly as ``train_v3.score_protocols`` draws them; checked draw for draw against
``v3.adapted_inputs``), results saved as ``cv_runs/NAME.npz`` and summarised by ``v3_cv.summarize``::

    SER_DATASETS=... python scripts/v3_attn.py run NAME --cache DIR --frames FRAMES.npz [--set key=value] \
        [--view both|speaker] [--units 128] [--ks-per-epoch 2]

Head inputs: the shipped two-view utterance vector (``v3.adapted_inputs``: population z, speaker z,
log(1+n)) and the encoder frame sequence (T, 384), each frame standardised the same two ways the
vector's mean-pooled part is: by the population mean/std of the frame-mean dims (``norm_mean[:384]``,
``norm_std[:384]``) and by the speaker's shrunk profile statistics of those dims (``prior.speaker_stats``
of the same drawn profile). Attention: Dense(units, tanh) -> Dense(1) -> softmax over the unpadded
frames; weighted mean and weighted std of the standardised frames, concatenated with the utterance
vector, then Dropout(dropout_in), Dense(hidden, relu), Dropout(dropout), Dense(7, softmax); L2 on
the Dense kernels, class x corpus (``ravdess_weight``) sample weights as ``train_v3.fit_head``.

Training rows: as ``v3.training_inputs`` (every clip with a profile of each of ``train_ks`` sizes,
drawn with ``seed``), but each epoch visits only ``--ks-per-epoch`` of a clip's profile sizes (drawn
per clip per epoch), to keep a fold to minutes on one thread. Batches are drawn within length buckets
(frames padded to 96/128/160/224, masked), bucket order shuffled.

``--frames``: an .npz of padded float16 frames (n, 224+, 384), ``lengths`` and ``paths`` in the
bank's order (scripts/v3_attn_frames.py writes it from the per-clip feature cache).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import v3_cv  # noqa: E402  (puts the project root on sys.path too)

ROOT = v3_cv.ROOT
ENC = 384
BUCKETS = (96, 128, 160, 224)
#: the within-clip spread of a frame dim is ~4x the between-clip spread of its mean (median over
#: dims), so frames standardised like the mean-pooled part are scaled by this inside the scorer only
SCORER_SCALE = 0.25


def profile_stats(vectors, speakers, *, k, norm_mean, norm_std, prior, rng):
    """``v3.adapted_inputs`` draw for draw, also returning each row's shrunk speaker (mean, sd) of the
    encoder mean and std dims: (X, mean_s (n, 768), sd_s (n, 768))."""
    from ser_model import v3

    x = np.asarray(vectors, dtype=np.float64)
    out = np.empty((len(x), v3.input_dim(x.shape[1])), dtype=np.float32)
    mu = np.empty((len(x), 2 * ENC), np.float32)
    sd = np.empty((len(x), 2 * ENC), np.float32)
    for i, (n, mean_s, var_s) in enumerate(v3.profile_draws(x, speakers, k=k, prior=prior, rng=rng)):
        out[i, : x.shape[1]] = (x[i] - norm_mean) / norm_std
        out[i, x.shape[1]: -1] = (x[i] - mean_s) / np.sqrt(var_s + 1e-6)
        out[i, -1] = v3.count_feature(n)
        mu[i] = mean_s[: 2 * ENC]
        sd[i] = np.sqrt(var_s[: 2 * ENC] + 1e-6)
    return out, mu, sd


def build_model(keras, vec_dim, pop_mu, pop_sd, s, *, units, view, std_norm="vector"):
    """The attention head. Standardising is affine per dimension, so nothing (B, T, 2*384) is built:
    the scorer's first Dense on [z_pop, z_spk] is one per-row kernel on the raw frames
    (W_pop / pop_sd + W_spk / spk_sd), and the weighted mean/std of a standardised view is the
    weighted mean/std of the raw frames standardised the same way (exact)."""
    import tensorflow as tf

    reg = keras.regularizers.L2(s.l2)
    fr = keras.Input(shape=(None, ENC), name="frames")
    mask = keras.Input(shape=(None,), name="mask")
    vec = keras.Input(shape=(vec_dim,), name="vec")
    smu = keras.Input(shape=(2 * ENC,), name="spk_mu")
    ssd = keras.Input(shape=(2 * ENC,), name="spk_sd")
    pmu_np, psd_np = pop_mu.astype(np.float32), pop_sd.astype(np.float32)  # (768,): mean part, std part
    # std_norm "vector": the weighted std standardised like the vector's std part, scorer output zero at
    # first (attention starts as mean pooling, the pooled views equal the vector's); "frames": the first
    # run's (weighted std of the mean-part-standardised frames, not centred; glorot scorer)
    w2_init = "zeros" if std_norm == "vector" else "glorot_uniform"

    class AttnPool(keras.layers.Layer):
        def build(self, *shapes):
            views = 1 if view == "speaker" else 2
            self.w1 = self.add_weight(shape=(views * ENC, units), initializer="glorot_uniform", regularizer=reg,
                                      name="w1")
            self.b1 = self.add_weight(shape=(units,), initializer="zeros", name="b1")
            self.w2 = self.add_weight(shape=(units, 1), initializer=w2_init, regularizer=reg, name="w2")
            self.b2 = self.add_weight(shape=(1,), initializer="zeros", name="b2")

        def call(self, f, m, mu, sd):
            pmu, psd = tf.constant(pmu_np[:ENC]), tf.constant(psd_np[:ENC])
            pmu2, psd2 = tf.constant(pmu_np[ENC:]), tf.constant(psd_np[ENC:])
            mu, sd, mu2, sd2 = mu[:, :ENC], sd[:, :ENC], mu[:, ENC:], sd[:, ENC:]
            ws = self.w1[-ENC:]  # speaker view's kernel
            k = ws[None] / sd[:, :, None]  # (B, 384, units)
            c = -tf.matmul((mu / sd)[:, None, :], ws[None])  # (B, 1, units)
            if view != "speaker":
                wp = self.w1[:ENC]
                k = k + (wp / psd[:, None])[None]
                c = c - tf.matmul((pmu / psd)[None, None, :], wp[None])
            a = tf.tanh(SCORER_SCALE * (tf.matmul(f, k) + c) + self.b1)  # (B, T, units)
            e = tf.squeeze(tf.matmul(a, self.w2), -1) + self.b2
            e = e + (1.0 - m) * -1e9
            w = tf.nn.softmax(e, axis=1)[:, :, None]
            fm = tf.reduce_sum(w * f, axis=1)
            fv = tf.reduce_sum(w * tf.square(f - fm[:, None, :]), axis=1)
            if std_norm == "vector":
                fs = tf.sqrt(fv + 1e-12)
                parts = [(fm - mu) / sd, (fs - mu2) / sd2]
                if view != "speaker":
                    parts = [(fm - pmu) / psd, (fs - pmu2) / psd2] + parts
            else:
                parts = [(fm - mu) / sd, tf.sqrt(fv / tf.square(sd) + 1e-6)]
                if view != "speaker":
                    parts = [(fm - pmu) / psd, tf.sqrt(fv / tf.square(psd) + 1e-6)] + parts
            return tf.concat(parts, axis=-1)

    if view == "none":  # control: the shipped MLP on the vector alone, trained by this loop
        z = vec
    else:
        z = keras.layers.Concatenate()([AttnPool()(fr, mask, smu, ssd), vec])
    z = keras.layers.Dropout(s.dropout_in)(z)
    z = keras.layers.Dense(s.hidden, activation="relu", kernel_regularizer=reg)(z)
    z = keras.layers.Dropout(s.dropout)(z)
    out = keras.layers.Dense(7, activation="softmax", kernel_regularizer=reg)(z)
    return keras.Model([fr, mask, vec, smu, ssd], out)


def _batch(frames, lengths, clip_idx, T):
    f = frames[clip_idx, :T].astype(np.float32)
    m = (np.arange(T)[None, :] < lengths[clip_idx][:, None]).astype(np.float32)
    return f, m


def _bucket(lengths):
    return np.searchsorted(np.array(BUCKETS), np.minimum(lengths, BUCKETS[-1]))


class AttnHead:
    def __init__(self, model, norm_mean, norm_std, prior):
        self.model, self.norm_mean, self.norm_std, self.prior = model, norm_mean, norm_std, prior

    def predict(self, frames, lengths, clip_idx, x, mu, sd, batch=256):
        out = np.zeros((len(clip_idx), 7), np.float64)
        b = _bucket(lengths[clip_idx])
        for j in np.unique(b):
            rows = np.flatnonzero(b == j)
            for a in range(0, len(rows), batch):
                r = rows[a: a + batch]
                f, m = _batch(frames, lengths, clip_idx[r], BUCKETS[j])
                out[r] = np.asarray(self.model([f, m, x[r], mu[r], sd[r]], training=False))
        return out


def fit_attn(frames, lengths, clip_idx, vectors, labels, speakers, corpora, s, *, units, view, ks_per_epoch,
             std_norm="vector", log=print):
    import tensorflow as tf

    from ser_model import v3
    from ser_model.train_v3 import _keras, _ks

    keras = _keras()
    norm_mean, norm_std, prior = v3.fit_prior(vectors, speakers, strength=s.strength)
    ks = _ks(s)
    rng = np.random.default_rng(s.seed)  # as v3.training_inputs: one generator over the ks in order
    X, MU, SD = [], [], []
    for k in ks:
        x, mu, sd = profile_stats(vectors, speakers, k=k, norm_mean=norm_mean, norm_std=norm_std, prior=prior,
                                  rng=rng)
        X.append(x)
        MU.append(mu)
        SD.append(sd)
    X, MU, SD = np.stack(X), np.stack(MU), np.stack(SD)  # (len(ks), n, .)
    n = len(labels)
    w = np.where(np.asarray(corpora) == "ravdess", s.ravdess_weight, 1.0)
    counts = np.bincount(labels, weights=w, minlength=7)
    cw = np.where(counts > 0, counts.sum() / (7 * np.maximum(counts, 1e-9)), 0.0)
    w = w * cw[labels]
    w = (w / w.mean()).astype(np.float32)

    keras.utils.set_random_seed(s.seed)
    model = build_model(keras, X.shape[2], norm_mean[: 2 * ENC].astype(np.float32),
                        norm_std[: 2 * ENC].astype(np.float32), s, units=units, view=view, std_norm=std_norm)
    opt = keras.optimizers.Adam(learning_rate=s.lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)

    @tf.function(reduce_retracing=True)
    def step(f, m, x, mu, sd, y, sw):
        with tf.GradientTape() as tape:
            p = model([f, m, x, mu, sd], training=True)
            loss = tf.reduce_mean(loss_fn(y, p) * sw) + tf.add_n(model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    erng = np.random.default_rng(s.seed + 7)
    bucket = _bucket(lengths[clip_idx])
    t0 = time.time()
    for ep in range(s.epochs):
        # each clip with ks_per_epoch distinct profile sizes this epoch
        pick = np.argsort(erng.random((n, len(ks))), axis=1)[:, :ks_per_epoch]
        rows = np.repeat(np.arange(n), ks_per_epoch)
        kk = pick.reshape(-1)
        batches = []
        for j in np.unique(bucket):
            sel = np.flatnonzero(bucket[rows] == j)
            sel = sel[erng.permutation(len(sel))]
            batches += [(j, sel[a: a + s.batch_size]) for a in range(0, len(sel), s.batch_size)]
        tot = 0.0
        for bi in erng.permutation(len(batches)):
            j, sel = batches[bi]
            r, k = rows[sel], kk[sel]
            f, m = _batch(frames, lengths, clip_idx[r], BUCKETS[j])
            tot += float(step(f, m, X[k, r], MU[k, r], SD[k, r], labels[r].astype(np.int32), w[r]))
        if ep in (0, s.epochs - 1) or ep % 5 == 4:
            log(f"    epoch {ep + 1}: loss {tot / len(batches):.4f} ({time.time() - t0:.0f} s)", flush=True)
    return AttnHead(model, norm_mean, norm_std, prior)


def score_attn(head, frames, lengths, clip_idx, vectors, speakers, *, adapt_k, seed, check=False):
    """``train_v3.score_protocols`` for the attention head: same generator, same profile draws."""
    from ser_model import v3

    rng = np.random.default_rng(seed + 1000)
    ref = np.random.default_rng(seed + 1000)
    out = {}
    for name, k in (("unadapted", 0), ("adapted", adapt_k)):
        x, mu, sd = profile_stats(vectors, speakers, k=k, norm_mean=head.norm_mean, norm_std=head.norm_std,
                                  prior=head.prior, rng=rng)
        if check:  # the same draws as the shipped protocol
            xr, _ = v3.adapted_inputs(vectors, speakers, k=k, norm_mean=head.norm_mean, norm_std=head.norm_std,
                                      prior=head.prior, rng=ref)
            assert np.array_equal(x, xr), "profile draws differ from v3.adapted_inputs"
        out[name] = head.predict(frames, lengths, clip_idx, x, mu, sd)
    return out


def run(args) -> None:
    from ser_model.recipe import load_head_recipe
    from ser_model.tf_quiet import import_tensorflow

    s = load_head_recipe(ROOT / "ser_model" / "configs" / "ser-v3-final.toml")
    s = replace(s, **{k: v3_cv._value(v) for k, v in (kv.split("=", 1) for kv in args.set)})
    import_tensorflow(s.threads)
    bank = v3_cv.load_bank(Path(args.cache), s.threads)
    z = np.load(args.frames, allow_pickle=False)
    if list(z["paths"]) != list(bank.paths):
        raise SystemExit(f"{args.frames}: not in the bank's order")
    frames, lengths = z["frames"], z["lengths"]
    if frames.shape[1] < BUCKETS[-1]:
        frames = np.pad(frames, ((0, 0), (0, BUCKETS[-1] - frames.shape[1]), (0, 0)))
    cropped = int((lengths > BUCKETS[-1]).sum())
    lengths = np.minimum(lengths, BUCKETS[-1])
    print(f"{len(lengths)} clips, frames {frames.shape}, {cropped} cropped to {BUCKETS[-1]}; view={args.view} "
          f"units={args.units} std_norm={args.std_norm} ks/epoch={args.ks_per_epoch} epochs={s.epochs} "
          f"seed={s.seed} threads={s.threads}", flush=True)
    out = Path(args.out or args.cache) / "cv_runs"
    target = out / f"{args.name}.npz"
    if target.exists():
        raise SystemExit(f"{target} exists; pick a new name")
    def fit_score(train, test, seed):
        tr, te = np.flatnonzero(train), np.flatnonzero(test)
        head = fit_attn(frames, lengths, tr, bank.vectors[train], bank.labels[train], bank.speakers[train],
                        bank.corpora[train], s, units=args.units, view=args.view, ks_per_epoch=args.ks_per_epoch,
                        std_norm=args.std_norm)
        return score_attn(head, frames, lengths, te, bank.vectors[test], bank.speakers[test], adapt_k=s.adapt_k,
                          seed=seed, check=True)

    probs, tested = v3_cv.run_folds(bank, s, fit_score, eval_seed=args.eval_seed, only=args.folds)
    if args.folds:
        print("partial run (--folds): not saved")
        return
    out.mkdir(parents=True, exist_ok=True)
    np.savez(target, y=bank.labels[tested], speakers=bank.speakers[tested],
             unadapted=probs["unadapted"][tested], adapted=probs["adapted"][tested])
    v3_cv.summarize([target], args.name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    v3_cv.run_arguments(r)
    r.add_argument("--frames", required=True)
    r.add_argument("--view", choices=("both", "speaker", "none"), default="both",
                   help="frames seen standardised both ways, or by the speaker's profile only; none: no "
                        "attention branch (the shipped MLP on the vector, trained by this loop: a control)")
    r.add_argument("--std-norm", choices=("vector", "frames"), default="vector",
                   help="weighted std standardised like the vector's std part, attention starting as mean "
                        "pooling (vector); or the first run's un-centred std of standardised frames (frames)")
    r.add_argument("--units", type=int, default=128, help="attention scorer width")
    r.add_argument("--ks-per-epoch", type=int, default=2, help="profile sizes visited per clip per epoch")
    r.add_argument("--folds", type=int, nargs="*", help="only these folds (1-based; a timing check, not saved)")
    args = ap.parse_args()
    run(args)


if __name__ == "__main__":
    main()
