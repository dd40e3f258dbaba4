"""The MNIST networks of the InfoGAN paper, as a plain GAN (no codes, no Q head).

Chen et al. 2016 (arXiv 1606.03657), appendix C, MNIST. Compared with the
tutorial's DCGAN, both networks have a fully connected layer of 1024 units, the
convolutions are 4x4 (divisible by their stride of 2), the generator uses ReLU
and the discriminator LeakyReLU 0.1 with BatchNormalization. On this project's
2-core CPU these networks reached a Fréchet distance several times lower than the
tutorial's in the same minutes (docs/results.md, "The presets' evidence"); BatchNormalization in the
discriminator is most of that gain.

Shapes below are for width ``f = base_filters`` (64 in the paper: 16f = 1024).
"""

from __future__ import annotations

import keras
from keras import layers

from gan_mnist.models import FAMILIES
from gan_mnist.models.base import GanModels, family_models
from gan_mnist.models.dcgan import IMAGE_SHAPE

PAPER = FAMILIES["infogan-nets"].defaults  # the paper's recipe


def generator_layers(base_filters: int = 64) -> list[layers.Layer]:
    """The paper's generator after its input: a vector -> a 28x28 image."""
    f = base_filters
    return [
        layers.Dense(16 * f, use_bias=False),  # (batch, 16f): 1024 in the paper
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.Dense(7 * 7 * 2 * f, use_bias=False),  # (batch, 7 * 7 * 2f)
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.Reshape((7, 7, 2 * f)),  # (batch, 7, 7, 2f)
        layers.Conv2DTranspose(f, 4, strides=2, padding="same", use_bias=False),
        layers.BatchNormalization(),  # (batch, 14, 14, f)
        layers.ReLU(),
        layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh"),
        # (batch, 28, 28, 1) in [-1, 1]
    ]


def build_generator(noise_dim: int = PAPER["noise_dim"], base_filters: int = 64) -> keras.Model:
    """Noise (batch, noise_dim) -> images (batch, 28, 28, 1) in [-1, 1]."""
    return keras.Sequential(
        [keras.Input(shape=(noise_dim,)), *generator_layers(base_filters)], name="generator"
    )


def feature_layers(
    base_filters: int = 64, dropout: float = 0.0, batchnorm: bool = True
) -> list[layers.Layer]:
    """The paper's discriminator up to its last hidden layer: an image -> 16f features.

    Args:
        batchnorm: False drops the discriminator's BatchNormalization (the ablation
            that measures what it is worth; not a flag).
    """
    f = base_filters

    def block(*first):
        norm = [layers.BatchNormalization()] if batchnorm else []
        rest = [layers.Dropout(dropout)] if dropout else []
        return [*first, *norm, layers.LeakyReLU(negative_slope=0.1), *rest]

    return [
        layers.Conv2D(f, 4, strides=2, padding="same"),  # (batch, 14, 14, f)
        layers.LeakyReLU(negative_slope=0.1),  # no BatchNorm on the first layer (DCGAN)
        *([layers.Dropout(dropout)] if dropout else []),
        *block(layers.Conv2D(2 * f, 4, strides=2, padding="same", use_bias=not batchnorm)),
        layers.Flatten(),  # (batch, 7 * 7 * 2f)
        *block(layers.Dense(16 * f, use_bias=not batchnorm)),  # (batch, 16f)
    ]


def build_discriminator(
    base_filters: int = 64, dropout: float = 0.0, batchnorm: bool = True
) -> keras.Model:
    """Images (batch, 28, 28, 1) in [-1, 1] -> logits (batch, 1)."""
    return keras.Sequential(
        [
            keras.Input(shape=IMAGE_SHAPE),
            *feature_layers(base_filters, dropout, batchnorm),
            layers.Dense(1),  # (batch, 1) logits
        ],
        name="discriminator",
    )


def build(config) -> GanModels:
    """The `infogan-nets` family for a `TrainConfig`."""
    return family_models(
        config,
        build_generator(config.noise_dim, config.base_filters),
        build_discriminator(config.base_filters, config.dropout),
    )
