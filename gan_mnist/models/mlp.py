"""The dense GAN of the classic Keras notebooks: no convolutions at all.

The generator is a stack of Dense layers with LeakyReLU and BatchNormalization
ending in 784 sigmoid units, so its pixels lie in [0, 1] (the family declares
that range; the input pipeline, image writers and sampling follow it). The
discriminator flattens the image into Dense layers with LeakyReLU and ends in
one logit. Widths scale with ``base_filters`` (64: 256-512-1024 units in G).
"""

from __future__ import annotations

import keras
from keras import layers

from gan_mnist.config import TrainConfig as TUTORIAL  # its defaults: the tutorial's
from gan_mnist.models.base import GanModels, family_models
from gan_mnist.models.dcgan import IMAGE_SHAPE


def build_generator(noise_dim: int = TUTORIAL.noise_dim, base_filters: int = 64) -> keras.Model:
    """Noise (batch, noise_dim) -> images (batch, 28, 28, 1) in [0, 1]."""
    f = base_filters
    stack = [keras.Input(shape=(noise_dim,))]
    for units in (4 * f, 8 * f, 16 * f):  # (batch, 256), (batch, 512), (batch, 1024)
        stack += [
            layers.Dense(units),
            layers.LeakyReLU(negative_slope=0.2),
            # momentum 0.8 (Keras' default is 0.99): the moving statistics follow the
            # fast-changing activations of GAN training, as in the classic notebooks.
            layers.BatchNormalization(momentum=0.8),
        ]
    stack += [
        layers.Dense(28 * 28, activation="sigmoid"),  # (batch, 784) pixels in [0, 1]
        layers.Reshape(IMAGE_SHAPE),  # (batch, 28, 28, 1)
    ]
    return keras.Sequential(stack, name="generator")


def build_discriminator(base_filters: int = 64, dropout: float = TUTORIAL.dropout) -> keras.Model:
    """Images (batch, 28, 28, 1) in [0, 1] -> logits (batch, 1)."""
    f = base_filters
    stack = [keras.Input(shape=IMAGE_SHAPE), layers.Flatten()]  # (batch, 784)
    for units in (8 * f, 4 * f):  # (batch, 512), (batch, 256)
        stack += [
            layers.Dense(units),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Dropout(dropout),
        ]
    stack.append(layers.Dense(1))  # (batch, 1) logits: the loss applies the sigmoid
    return keras.Sequential(stack, name="discriminator")


def build(config) -> GanModels:
    """The `mlp` family for a `TrainConfig`."""
    return family_models(
        config,
        build_generator(config.noise_dim, config.base_filters),
        build_discriminator(config.base_filters, config.dropout),
    )
