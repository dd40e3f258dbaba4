"""InfoGAN on MNIST, as an experiment: do its categorical codes pick digits here?

The InfoGAN paper's networks (`gan_mnist.models.infogan_nets`) with its latent code
(Chen et al. 2016): 62 noise values, a 10-way categorical code and 2 continuous codes
in [-1, 1] feed the generator; a Q head on the discriminator's features (FC 128,
BatchNorm, LeakyReLU 0.1) predicts the codes back, and both networks minimise the
code's cross-entropy (weight 1) and the continuous codes' squared error (weight 0.1)
beside the GAN loss. Labels are never read, and the evaluation classifier is never
trained against.

After training, for each code value 500 images are drawn (fresh noise and continuous
codes) and labelled by the project's MNIST classifier: a code's purity is the share of
its images with its majority digit. The issue's bar for shipping `--model infogan`:
purity at least 0.8 on at least 8 digits (distinct majority digits).

    python bench/infogan.py --seeds 1 2 3 --epochs 10      # the fast budget
    python bench/infogan.py --seeds 1 --epochs 1 --limit 2000   # a quick look

Prints one line per seed and appends it to ``--log`` (JSON lines).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gan_mnist  # noqa: F401  (quiets TensorFlow's start-up logs before it loads)

NOISE, CODES, CONTINUOUS = 62, 10, 2
INFO_WEIGHT, CONTINUOUS_WEIGHT = 1.0, 0.1
PER_CODE = 500


def build(base_filters: int = 64):
    import keras
    from keras import layers

    from gan_mnist.models.dcgan import IMAGE_SHAPE
    from gan_mnist.models.infogan_nets import feature_layers, generator_layers

    generator = keras.Sequential(
        [keras.Input(shape=(NOISE + CODES + CONTINUOUS,)), *generator_layers(base_filters)]
    )
    image = keras.Input(shape=IMAGE_SHAPE)
    features = image
    for layer in feature_layers(base_filters):
        features = layer(features)
    logit = layers.Dense(1)(features)
    q = layers.Dense(128, use_bias=False)(features)
    q = layers.LeakyReLU(negative_slope=0.1)(layers.BatchNormalization()(q))
    code_logits = layers.Dense(CODES)(q)
    continuous = layers.Dense(CONTINUOUS)(q)
    discriminator = keras.Model(image, [logit, code_logits, continuous])
    return generator, discriminator


def latents(tf, rng, n, codes=None):
    noise = rng.normal([n, NOISE])
    if codes is None:
        codes = rng.uniform([n], 0, CODES, dtype=tf.int32)
    continuous = rng.uniform([n, CONTINUOUS], -1.0, 1.0)
    return tf.concat([noise, tf.one_hot(codes, CODES), continuous], 1), codes, continuous


def train_one(seed: int, epochs: int, limit: int | None, batch: int, mnist) -> dict:
    import keras
    import tensorflow as tf

    from gan_mnist.pipeline import make_dataset

    keras.utils.set_random_seed(seed)
    generator, discriminator = build()
    average = keras.models.clone_model(generator)
    average.set_weights(generator.get_weights())
    g_opt = keras.optimizers.Adam(1e-3, beta_1=0.5)
    d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    rng = tf.random.Generator.from_seed(seed)
    step_count = tf.Variable(0.0)
    pairs = [(a, w) for a, w in zip(average.weights, generator.weights, strict=True)]

    def info_loss(code_logits, continuous_pred, codes, continuous):
        categorical = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(codes, code_logits)
        )
        squared = tf.reduce_mean(tf.reduce_sum(tf.square(continuous_pred - continuous), 1))
        return INFO_WEIGHT * categorical + CONTINUOUS_WEIGHT * squared

    @tf.function(jit_compile=True)
    def step(images):
        z, codes, continuous = latents(tf, rng, tf.shape(images)[0])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(z, training=True)
            real_logit, _, _ = discriminator(images, training=True)
            fake_logit, code_logits, continuous_pred = discriminator(fake, training=True)
            info = info_loss(code_logits, continuous_pred, codes, continuous)
            d_loss = tf.reduce_mean(tf.nn.softplus(-real_logit) + tf.nn.softplus(fake_logit))
            g_loss = tf.reduce_mean(tf.nn.softplus(-fake_logit))
            d_total, g_total = d_loss + info, g_loss + info
        g_opt.apply_gradients(
            zip(g_tape.gradient(g_total, generator.trainable_variables),
                generator.trainable_variables, strict=True)
        )  # fmt: skip
        d_opt.apply_gradients(
            zip(d_tape.gradient(d_total, discriminator.trainable_variables),
                discriminator.trainable_variables, strict=True)
        )  # fmt: skip
        step_count.assign_add(1.0)
        decay = tf.minimum(0.999, (1.0 + step_count) / (10.0 + step_count))
        for a, w in pairs:  # the project's averaged generator, as in its presets
            a.assign(decay * a + (1.0 - decay) * w)
        return d_loss, g_loss, info

    images = mnist.x_train[:limit] if limit else mnist.x_train
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        dataset = make_dataset(images, mnist.y_train[: len(images)], batch, seed=seed, epoch=epoch)
        for batch_images, _ in dataset:
            d_loss, g_loss, info = step(batch_images)
        print(f"seed {seed} epoch {epoch}: d {float(d_loss):.3f} g {float(g_loss):.3f} "
              f"info {float(info):.3f}", flush=True)  # fmt: skip
    seconds = time.perf_counter() - started
    return {"average": average, "seconds": seconds, "rng": rng}


def purity(generator, rng, evaluator) -> dict:
    import numpy as np
    import tensorflow as tf

    from gan_mnist.pipeline import to_uint8

    majority, shares = [], []
    for code in range(CODES):
        z, _, _ = latents(tf, rng, PER_CODE, codes=tf.fill([PER_CODE], code))
        images = to_uint8(generator(z, training=False), (-1.0, 1.0))[..., 0]
        _, probabilities = evaluator.predict(images)
        counts = np.bincount(probabilities.argmax(1), minlength=10)
        majority.append(int(counts.argmax()))
        shares.append(float(counts.max() / PER_CODE))
    return {
        "majority_digit": majority,
        "purity": [round(s, 3) for s in shares],
        "mean_purity": round(float(np.mean(shares)), 3),
        "distinct_digits": len(set(majority)),
        "pure_codes": int(sum(s >= 0.8 for s in shares)),
        "pure_distinct_digits": len({m for m, s in zip(majority, shares, strict=True) if s >= 0.8}),
    }


def quality(generator, rng, evaluator, mnist, n: int = 10_000) -> dict:
    """The project's metrics of n images with random codes, against the test images."""
    import tensorflow as tf

    from gan_mnist.pipeline import to_uint8

    images = []
    for start in range(0, n, 500):
        z, _, _ = latents(tf, rng, min(500, n - start))
        images.append(to_uint8(generator(z, training=False), (-1.0, 1.0))[..., 0])
    import numpy as np

    reference, _ = evaluator.predict(mnist.x_test[:n])
    scores = evaluator.score(np.concatenate(images), reference)
    return {k: scores[k] for k in ("frechet_distance", "classifier_score", "digits_covered")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=10, help="passes over the images")
    parser.add_argument("--limit", type=int, help="the first N training images only")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--log", type=Path, default=Path("bench/results/infogan-runs.jsonl"))
    args = parser.parse_args()

    from gan_mnist.data import load_mnist
    from gan_mnist.evaluator import Evaluator

    mnist, evaluator = load_mnist(), Evaluator.load()
    for seed in args.seeds:
        trained = train_one(seed, args.epochs, args.limit, args.batch, mnist)
        row = {
            "seed": seed,
            "epochs": args.epochs,
            "limit": args.limit,
            "train_minutes": round(trained["seconds"] / 60, 1),
            **purity(trained["average"], trained["rng"], evaluator),
            **quality(trained["average"], trained["rng"], evaluator, mnist),
        }
        print(json.dumps(row), flush=True)
        args.log.parent.mkdir(parents=True, exist_ok=True)
        with args.log.open("a") as log:
            log.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
