import math

import keras
import numpy as np
import tensorflow as tf

from gan_mnist.config import make_config
from gan_mnist.models import build_models
from gan_mnist.step import discriminator_loss, generator_loss, make_train_step


def test_losses_match_binary_cross_entropy_by_hand():
    # D undecided (logit 0 = probability 0.5): each term is ln 2.
    zeros = tf.zeros([4, 1])
    assert math.isclose(float(discriminator_loss(zeros, zeros)), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(float(generator_loss(zeros)), math.log(2), rel_tol=1e-6)
    # Non-saturating: a generator that fools D completely has a loss near 0 ...
    assert float(generator_loss(tf.fill([4, 1], 20.0))) < 1e-6
    # ... and a hopeless one a large loss (strong gradient), finite even for extreme logits.
    hopeless = float(generator_loss(tf.fill([4, 1], -200.0)))
    assert math.isfinite(hopeless) and hopeless > 100


def test_one_train_step_changes_both_networks_and_returns_finite_losses():
    keras.utils.set_random_seed(0)
    models = build_models(make_config("smoke"))
    g_opt, d_opt = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3)
    step = make_train_step(models, g_opt, d_opt, tf.random.Generator.from_seed(0))
    images = tf.random.uniform([8, 28, 28, 1], -1, 1)
    labels = tf.zeros([8], tf.int32)
    g_before = [w.numpy().copy() for w in models.generator.trainable_weights]
    d_before = [w.numpy().copy() for w in models.discriminator.trainable_weights]

    losses = step(images, labels)

    assert np.isfinite(float(losses["d_loss"])) and np.isfinite(float(losses["g_loss"]))
    assert all(
        not np.allclose(b, w.numpy())
        for b, w in zip(g_before, models.generator.trainable_weights, strict=True)
    )
    assert all(
        not np.allclose(b, w.numpy())
        for b, w in zip(d_before, models.discriminator.trainable_weights, strict=True)
    )
    assert int(g_opt.iterations.numpy()) == 1 and int(d_opt.iterations.numpy()) == 1


def test_repeated_steps_draw_fresh_noise():
    models = build_models(make_config("smoke"))
    rng = tf.random.Generator.from_seed(3)
    first = rng.normal([2, models.noise_dim]).numpy()
    second = rng.normal([2, models.noise_dim]).numpy()
    assert not np.allclose(first, second)
