"""The generator and discriminator (Keras 3), behind one small interface.

`build_models(config)` returns a `GanModels`; the training step only calls its
`generate` and `discriminate`, so another model family (a class-conditional
DCGAN, a dense GAN) is a new builder here, not a change to the training code.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from gan_mnist.config import TrainConfig

IMAGE_SHAPE = (28, 28, 1)


def build_generator(noise_dim: int = 100, base_filters: int = 64) -> keras.Model:
    """The DCGAN generator of the TensorFlow tutorial.

    Args:
        noise_dim: length of the input noise vector.
        base_filters: 64 gives the tutorial's 2,330,944 parameters.

    Returns:
        A model mapping noise (batch, noise_dim) to images (batch, 28, 28, 1) in [-1, 1].
    """
    f = base_filters
    return keras.Sequential(
        [
            keras.Input(shape=(noise_dim,)),
            # No bias: the BatchNormalization right after adds its own shift.
            layers.Dense(7 * 7 * 4 * f, use_bias=False),  # (batch, 12544)
            layers.BatchNormalization(),
            layers.LeakyReLU(negative_slope=0.3),
            layers.Reshape((7, 7, 4 * f)),  # (batch, 7, 7, 256)
            layers.Conv2DTranspose(2 * f, 5, strides=1, padding="same", use_bias=False),
            layers.BatchNormalization(),  # (batch, 7, 7, 128)
            layers.LeakyReLU(negative_slope=0.3),
            layers.Conv2DTranspose(f, 5, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(),  # (batch, 14, 14, 64)
            layers.LeakyReLU(negative_slope=0.3),
            # tanh puts pixels in [-1, 1], the range the real images are scaled to.
            layers.Conv2DTranspose(
                1, 5, strides=2, padding="same", use_bias=False, activation="tanh"
            ),  # (batch, 28, 28, 1)
        ],
        name="generator",
    )


def build_discriminator(base_filters: int = 64, dropout: float = 0.3) -> keras.Model:
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
    f = base_filters
    return keras.Sequential(
        [
            keras.Input(shape=IMAGE_SHAPE),
            layers.Conv2D(f, 5, strides=2, padding="same"),  # (batch, 14, 14, 64)
            layers.LeakyReLU(negative_slope=0.3),
            layers.Dropout(dropout),
            layers.Conv2D(2 * f, 5, strides=2, padding="same"),  # (batch, 7, 7, 128)
            layers.LeakyReLU(negative_slope=0.3),
            layers.Dropout(dropout),
            layers.Flatten(),  # (batch, 6272)
            layers.Dense(1),  # (batch, 1) logits
        ],
        name="discriminator",
    )


@dataclass(frozen=True)
class GanModels:
    """A generator and a discriminator, and how to call them.

    `conditional` models take the class labels as a second input; unconditional
    ones ignore the labels, so one training step serves both.
    """

    generator: keras.Model
    discriminator: keras.Model
    noise_dim: int
    conditional: bool = False

    def generate(self, noise, labels=None, training: bool = False):
        """Images (batch, 28, 28, 1) in [-1, 1] from noise (batch, noise_dim)."""
        inputs = [noise, labels] if self.conditional else noise
        return self.generator(inputs, training=training)

    def discriminate(self, images, labels=None, training: bool = False):
        """Logits (batch, 1) for images (batch, 28, 28, 1) in [-1, 1]."""
        inputs = [images, labels] if self.conditional else images
        return self.discriminator(inputs, training=training)


def build_dcgan(config: TrainConfig) -> GanModels:
    return GanModels(
        generator=build_generator(config.noise_dim, config.base_filters),
        discriminator=build_discriminator(config.base_filters, config.dropout),
        noise_dim=config.noise_dim,
    )


BUILDERS = {"dcgan": build_dcgan}


def build_models(config: TrainConfig) -> GanModels:
    """The generator and discriminator that ``config.model`` names."""
    return BUILDERS[config.model](config)
