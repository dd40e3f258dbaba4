"""The train step: finite losses, each network moved only by its own optimizer."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_mnist.config import make_config
from gan_mnist.losses import LOSSES
from gan_mnist.models import FAMILIES, build_models
from gan_mnist.step import make_train_step


def weights(model):
    return [w.numpy().copy() for w in model.trainable_weights]


def changed(before, model):
    return [
        not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights, strict=True)
    ]


def one_step(family, gen_lr, disc_lr, loss="nonsaturating", seed=0):
    keras.utils.set_random_seed(seed)
    models = build_models(make_config("smoke", model=family))
    g_opt, d_opt = keras.optimizers.Adam(gen_lr), keras.optimizers.Adam(disc_lr)
    step = tf.function(
        make_train_step(models, LOSSES[loss], g_opt, d_opt, tf.random.Generator.from_seed(seed), 8)
    )
    low, high = models.pixel_range
    images = tf.random.uniform([8, 28, 28, 1], low, high)
    labels = tf.range(8) % 10
    g_before, d_before = weights(models.generator), weights(models.discriminator)
    losses = step(images, labels)
    return (
        models,
        losses,
        changed(g_before, models.generator),
        changed(d_before, models.discriminator),
    )


@pytest.mark.parametrize("family", list(FAMILIES))
def test_one_step_moves_both_networks_and_returns_finite_losses(family):
    _, losses, g_changed, d_changed = one_step(family, 1e-3, 1e-3)
    assert math.isfinite(float(losses["d_loss"])) and math.isfinite(float(losses["g_loss"]))
    assert all(g_changed) and all(d_changed)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_network_is_moved_only_by_its_own_loss_and_optimizer(family):
    # The generator's optimizer frozen (lr 0): D learns, G does not; and the other way.
    _, _, g_changed, d_changed = one_step(family, gen_lr=0.0, disc_lr=1e-3)
    assert not any(g_changed) and all(d_changed)
    _, _, g_changed, d_changed = one_step(family, gen_lr=1e-3, disc_lr=0.0)
    assert all(g_changed) and not any(d_changed)


@pytest.mark.parametrize("family", ["dcgan", "cdcgan"])
def test_untrained_losses_start_near_the_undecided_values(family):
    # An untrained D says ~0.5 to everything: d_loss ~ 2 ln 2 = 1.39, g_loss ~ ln 2 = 0.69.
    # cdcgan's class loss (~ ln 10 = 2.3 untrained) is trained on but not reported: the
    # logged losses of every family are the GAN's own, and their curves compare.
    _, losses, _, _ = one_step(family, 0.0, 0.0)
    assert abs(float(losses["d_loss"]) - 2 * math.log(2)) < 0.1
    assert abs(float(losses["g_loss"]) - math.log(2)) < 0.1


def test_given_noise_replaces_the_drawn_noise():
    keras.utils.set_random_seed(0)
    models = build_models(make_config("smoke", dropout=0.0))  # no random dropout masks
    step = make_train_step(
        models,
        LOSSES["nonsaturating"],
        keras.optimizers.Adam(0.0),
        keras.optimizers.Adam(0.0),
        tf.random.Generator.from_seed(0),
        4,
    )
    images, labels = tf.zeros([4, 28, 28, 1]), tf.zeros([4], tf.int32)
    noise = tf.random.normal([4, models.noise_dim], seed=1)
    first = step(images, labels, noise)
    second = step(images, labels, noise)  # the rng moved on, the given noise did not
    assert float(first["g_loss"]) == pytest.approx(float(second["g_loss"]), rel=1e-6)
    drawn = step(images, labels)
    assert float(drawn["g_loss"]) != pytest.approx(float(first["g_loss"]), rel=1e-6)
