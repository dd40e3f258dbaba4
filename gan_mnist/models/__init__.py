"""The model families: each a generator and a discriminator, behind one interface.

`FAMILIES` is the registry (``--model``). It is read without TensorFlow, so the
CLI can check its flags at once; `build_models` imports the family's module
(``gan_mnist/models/NAME.py``, ``-`` read as ``_``), whose ``build(config)`` returns a `GanModels`.
A new family is one new module and one entry here: the training step, sampling,
checkpoints and artifacts only call `GanModels`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gan_mnist.config import TrainConfig
    from gan_mnist.models.base import GanModels


@dataclass(frozen=True)
class Family:
    """What the rest of the package needs to know about a model family."""

    name: str  # the --model value and the module's name
    summary: str  # one line for --help and docs/models-and-presets.md
    conditional: bool  # the generator and discriminator also take the class label
    pixel_range: tuple[float, float]  # (-1, 1) for a tanh generator, (0, 1) for a sigmoid


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "dcgan",
            "the TensorFlow tutorial's DCGAN: Dense + Conv2DTranspose generator, "
            "Conv2D discriminator",
            conditional=False,
            pixel_range=(-1.0, 1.0),
        ),
        Family(
            "cdcgan",
            "class-conditional DCGAN: ask for a digit; the label joins the noise in the "
            "generator and is projected onto the discriminator's features",
            conditional=True,
            pixel_range=(-1.0, 1.0),
        ),
        Family(
            "infogan-nets",
            "the InfoGAN paper's MNIST networks as a plain GAN: Dense 1024 + 4x4 "
            "Conv2DTranspose generator, Conv2D + BatchNorm + Dense 1024 discriminator",
            conditional=False,
            pixel_range=(-1.0, 1.0),
        ),
        Family(
            "mlp",
            "the dense GAN of the classic Keras notebooks: Dense/BatchNorm/LeakyReLU "
            "layers, sigmoid pixels in [0, 1]",
            conditional=False,
            pixel_range=(0.0, 1.0),
        ),
    )
}


def build_models(config: TrainConfig) -> GanModels:
    """The generator and discriminator that ``config.model`` names."""
    module = config.model.replace("-", "_")
    return importlib.import_module(f"gan_mnist.models.{module}").build(config)
