"""The model families: each a generator and a discriminator, behind one interface.

`FAMILIES` is the registry (``--model``). It is read without TensorFlow, so the
CLI can check its flags at once; `build_models` imports the family's module
(``gan_mnist/models/NAME.py``, ``-`` read as ``_``), whose ``build(config)`` returns a `GanModels`.
A new family is one new module and one entry here: the training step, sampling,
checkpoints and artifacts only call `GanModels`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    # What the family needs in every preset (on top of TrainConfig's defaults).
    defaults: dict[str, Any] = field(default_factory=dict)
    # Its own recipe for a preset that trains another family by default (`--preset
    # demo --model dcgan`), used instead of that preset's settings: only measured ones
    # (docs/results.md); `make_config` refuses a preset a family has no recipe for.
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)


# The demo recipe of the tutorial's networks (`--preset demo --model dcgan`, the
# notebook's Part 1): half the width, 4x cheaper per image, and small batches. Every
# figure behind these choices: docs/results.md, "The recipe search for the tutorial's
# networks".
DCGAN_DEMO: dict[str, Any] = dict(
    epochs=12,
    batch_size=32,
    limit=20000,
    base_filters=32,
    gen_lr=4e-4,
    disc_lr=2e-4,
    beta_1=0.5,  # the DCGAN paper's value: less momentum, steadier adversarial steps
    dropout=0.0,  # D's dropout 0.3 (the tutorial's) was worse
    # Previews, samples and evaluations from a moving average of G's weights: the one
    # clear win of that search, and no slower.
    ema=0.999,
)
MLP_DEMO: dict[str, Any] = dict(
    epochs=15, batch_size=64, base_filters=64, gen_lr=2e-4, disc_lr=2e-4, beta_1=0.5,
    dropout=0.0, ema=0.999,
)  # fmt: skip

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "dcgan",
            "the TensorFlow tutorial's DCGAN: Dense + Conv2DTranspose generator, "
            "Conv2D discriminator",
            conditional=False,
            pixel_range=(-1.0, 1.0),
            recipes={"demo": DCGAN_DEMO},
        ),
        Family(
            "cdcgan",
            "class-conditional DCGAN: ask for a digit; the label joins the noise in the "
            "generator and is projected onto the discriminator's features",
            conditional=True,
            pixel_range=(-1.0, 1.0),
            # A 10 x 10 preview: one row per class, one column per fixed noise vector.
            defaults=dict(num_examples=10),
            # The tutorial networks' demo with D's learning rate raised to G's: it
            # lifted the worst digit's share drawn as asked (docs/results.md, the
            # recipe search); the same 12 epochs.
            recipes={"demo": {**DCGAN_DEMO, "disc_lr": 4e-4}},
        ),
        Family(
            "infogan-nets",
            "the InfoGAN paper's MNIST networks as a plain GAN: Dense 1024 + 4x4 "
            "Conv2DTranspose generator, Conv2D + BatchNorm + Dense 1024 discriminator",
            conditional=False,
            pixel_range=(-1.0, 1.0),
            # The InfoGAN paper's MNIST recipe (Chen et al. 2016, appendix C): its 62-d
            # noise, Adam G 1e-3 / D 2e-4 with beta_1 0.5, batch 64, and no dropout (its
            # discriminator has BatchNorm instead). Its width (16f = 1024 units) is
            # --base-filters 64, the default.
            defaults=dict(
                noise_dim=62, batch_size=64, gen_lr=1e-3, disc_lr=2e-4, beta_1=0.5, dropout=0.0
            ),
        ),
        Family(
            "mlp",
            "the dense GAN of the classic Keras notebooks: Dense/BatchNorm/LeakyReLU "
            "layers, sigmoid pixels in [0, 1]",
            conditional=False,
            pixel_range=(0.0, 1.0),
            # The dense GAN is cheap per image, so its demo sees all 60,000 images 15
            # times in about the demo's minutes, at the classic Keras notebooks' width
            # and Adam(2e-4, beta_1 0.5). With the tutorial networks' demo settings
            # (half width, D at half G's rate) D won at once (d_loss 0.12, g_loss 4.0)
            # and drew speckles.
            recipes={"demo": MLP_DEMO},
        ),
    )
}


def build_models(config: TrainConfig) -> GanModels:
    """The generator and discriminator that ``config.model`` names."""
    module = config.model.replace("-", "_")
    return importlib.import_module(f"gan_mnist.models.{module}").build(config)
