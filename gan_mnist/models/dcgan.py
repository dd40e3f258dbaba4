"""The DCGAN of the TensorFlow tutorial: the generator and discriminator (Keras 3).

Shapes below are for width ``f = base_filters`` (64 in the tutorial: 4f = 256).
"""

from __future__ import annotations

import keras
from keras import layers

from gan_mnist.config import TrainConfig as TUTORIAL  # its defaults: the tutorial's
from gan_mnist.models.base import GanModels, family_models

IMAGE_SHAPE = (28, 28, 1)


def generator_layers(base_filters: int = 64) -> list[layers.Layer]:
    """The tutorial generator's layers after its input: a vector -> a 28x28 image."""
    f = base_filters
    return [
        # No bias: the BatchNormalization right after adds its own shift.
        layers.Dense(7 * 7 * 4 * f, use_bias=False),  # (batch, 7 * 7 * 4f)
        layers.BatchNormalization(),
        layers.LeakyReLU(negative_slope=0.3),
        layers.Reshape((7, 7, 4 * f)),  # (batch, 7, 7, 4f)
        layers.Conv2DTranspose(2 * f, 5, strides=1, padding="same", use_bias=False),
        layers.BatchNormalization(),  # (batch, 7, 7, 2f)
        layers.LeakyReLU(negative_slope=0.3),
        layers.Conv2DTranspose(f, 5, strides=2, padding="same", use_bias=False),
        layers.BatchNormalization(),  # (batch, 14, 14, f)
        layers.LeakyReLU(negative_slope=0.3),
        # tanh puts pixels in [-1, 1], the range the real images are scaled to.
        layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False, activation="tanh"),
        # (batch, 28, 28, 1)
    ]


def build_generator(noise_dim: int = TUTORIAL.noise_dim, base_filters: int = 64) -> keras.Model:
    """The DCGAN generator of the TensorFlow tutorial.

    Args:
        noise_dim: length of the input noise vector.
        base_filters: 64 gives the tutorial's 2,330,944 parameters.

    Returns:
        A model mapping noise (batch, noise_dim) to images (batch, 28, 28, 1) in [-1, 1].
    """
    return keras.Sequential(
        [keras.Input(shape=(noise_dim,)), *generator_layers(base_filters)], name="generator"
    )


def feature_layers(base_filters: int = 64, dropout: float = TUTORIAL.dropout) -> list[layers.Layer]:
    """The tutorial discriminator's convolutions: an image -> a feature vector."""
    f = base_filters
    return [
        layers.Conv2D(f, 5, strides=2, padding="same"),  # (batch, 14, 14, f)
        layers.LeakyReLU(negative_slope=0.3),
        layers.Dropout(dropout),
        layers.Conv2D(2 * f, 5, strides=2, padding="same"),  # (batch, 7, 7, 2f)
        layers.LeakyReLU(negative_slope=0.3),
        layers.Dropout(dropout),
        layers.Flatten(),  # (batch, 7 * 7 * 2f)
    ]


def build_discriminator(base_filters: int = 64, dropout: float = TUTORIAL.dropout) -> keras.Model:
    """The DCGAN discriminator of the TensorFlow tutorial.

    Args:
        base_filters: 64 gives the tutorial's 212,865 parameters.
        dropout: rate after each conv block; it keeps the discriminator from
            memorising the real images and overpowering the generator.

    Returns:
        A model mapping images (batch, 28, 28, 1) in [-1, 1] to one logit each
        (batch, 1): > 0 means "real". No sigmoid: the loss takes logits, which is
        numerically safer than log(sigmoid(x)).
    """
    return keras.Sequential(
        [
            keras.Input(shape=IMAGE_SHAPE),
            *feature_layers(base_filters, dropout),
            layers.Dense(1),  # (batch, 1) logits
        ],
        name="discriminator",
    )


def build(config) -> GanModels:
    """The `dcgan` family for a `TrainConfig`."""
    return family_models(
        config,
        build_generator(config.noise_dim, config.base_filters),
        build_discriminator(config.base_filters, config.dropout),
    )
