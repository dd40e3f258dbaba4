"""`GanModels`: a family's two networks, how its latents are drawn, and its pixels.

The training step, the preview grids, sampling, interpolation and the app call
only these methods, so they work unchanged for every family: conditional or not,
tanh or sigmoid pixels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from gan_mnist.data import NUM_CLASSES
from gan_mnist.models import FAMILIES, Family
from gan_mnist.pipeline import to_uint8


@dataclass(frozen=True)
class GanModels:
    """A generator and a discriminator (None when only a generator was loaded).

    Conditional families take the class as a one-hot vector (batch, K): `generate`
    and `discriminate` accept class ids (batch,) and convert them, and the
    generator also accepts soft mixtures of classes (a class-to-class walk).
    """

    generator: keras.Model
    discriminator: keras.Model | None
    family: Family
    noise_dim: int
    # Weight of an auxiliary classification loss, for families whose discriminator
    # also predicts the class (a second output, AC-GAN style); 0 = none.
    class_loss_weight: float = 0.0
    num_classes: int = NUM_CLASSES  # a conditional family's classes (the one-hot size)

    @classmethod
    def of(cls, generator: keras.Model, discriminator: keras.Model, family: str = "dcgan"):
        """Networks built outside the package (a notebook's, say) as a `GanModels` of
        ``family``, for `train(models=...)`; the noise length is the generator's first
        input's, a conditional one's classes its second's."""
        inputs = [int(i.shape[-1]) for i in generator.inputs]
        classes = inputs[1] if len(inputs) > 1 else NUM_CLASSES
        return cls(generator, discriminator, FAMILIES[family], inputs[0], num_classes=classes)

    @property
    def conditional(self) -> bool:
        return self.family.conditional

    @property
    def pixel_range(self) -> tuple[float, float]:
        return self.family.pixel_range

    def draw_latents(self, rng: tf.random.Generator, n, labels=None):
        """Noise (n, noise_dim) ~ N(0, 1) and, for conditional families, class ids (n,).

        Args:
            labels: the classes to draw; by default uniform over the classes.

        Returns:
            (noise, labels); labels is None for unconditional families.
        """
        noise = rng.normal([n, self.noise_dim])
        if not self.conditional:
            return noise, None
        if labels is None:
            labels = rng.uniform([n], 0, self.num_classes, dtype=tf.int32)
        return noise, tf.broadcast_to(tf.cast(labels, tf.int32), [n])

    def preview_latents(self, noise):
        """The preview grid's latents from its fixed noise (columns, noise_dim).

        Unconditional: the noise itself. Conditional: a row per class, each
        with the same noise, so a row shows one class and a column one "style".
        """
        if not self.conditional:
            return noise, None
        columns = tf.shape(noise)[0]
        labels = tf.repeat(tf.range(self.num_classes), columns)  # 0,0,..,1,1,..
        return tf.tile(noise, [self.num_classes, 1]), labels

    def preview_columns(self, examples: int) -> int | None:
        """Columns of the preview grid: one per noise vector for conditional families
        (rows are classes); None (a square grid) otherwise."""
        return examples if self.conditional else None

    def generate(self, noise, labels=None, training: bool = False):
        """Images (batch, 28, 28, 1) in `pixel_range` from noise (batch, noise_dim)."""
        noise = tf.convert_to_tensor(noise, tf.float32)
        inputs = [noise, self._one_hot(labels)] if self.conditional else noise
        # float32 out also under mixed precision (float16 inside): the discriminator
        # and the writers see one dtype.
        return tf.cast(self.generator(inputs, training=training), tf.float32)

    def discriminate(self, images, labels=None, training: bool = False):
        """Logits (batch, 1) for images (batch, 28, 28, 1) in `pixel_range`; > 0 = real."""
        return self.judge(images, labels, training)[0]

    def judge(self, images, labels=None, training: bool = False):
        """The discriminator's logits (batch, 1) and, if it has a class head, its class
        logits (batch, K) (else None)."""
        images = tf.convert_to_tensor(images, tf.float32)
        inputs = [images, self._one_hot(labels)] if self.conditional else images
        outputs = self.discriminator(inputs, training=training)
        # Logits in float32 also under mixed precision, so the losses are float32.
        if isinstance(outputs, list | tuple):
            return tf.cast(outputs[0], tf.float32), tf.cast(outputs[1], tf.float32)
        return tf.cast(outputs, tf.float32), None

    def class_loss(self, class_logits, labels):
        """Per-example (batch,) weighted cross-entropy of the class head (0 without one)."""
        if class_logits is None or not self.class_loss_weight:
            return 0.0
        return self.class_loss_weight * keras.losses.sparse_categorical_crossentropy(
            labels, class_logits, from_logits=True
        )

    def to_uint8(self, images) -> np.ndarray:
        """Generated images -> uint8 (batch, 28, 28), 0 = black, like MNIST."""
        return to_uint8(images, self.pixel_range)[..., 0]

    def _one_hot(self, labels):
        if labels is None:
            raise ValueError(f"the {self.family.name} model needs class labels")
        labels = tf.convert_to_tensor(labels)
        if labels.shape.rank == 2:  # already (batch, K): one-hot or a mixture
            return tf.cast(labels, tf.float32)
        return tf.one_hot(tf.cast(labels, tf.int32), self.num_classes)


def family_models(config, generator, discriminator, class_loss_weight=0.0) -> GanModels:
    """Wrap a family's two networks for ``config``."""
    return GanModels(
        generator,
        discriminator,
        FAMILIES[config.model],
        config.noise_dim,
        class_loss_weight,
        config.num_classes,
    )


def fingerprint(models: GanModels) -> str:
    """A short hash of both networks' inputs and every layer's settings (its
    `get_config()` without the automatic layer name, which changes each time a network
    is rebuilt): a run of user-built networks records it, so resuming with other
    networks is refused, and any edit of a layer (an activation, a slope, an
    interpolation) is another run."""
    parts = []
    for network in (models.generator, models.discriminator):
        parts.append(repr(network.input_shape))
        for layer in network.layers:
            settings = {k: v for k, v in layer.get_config().items() if k != "name"}
            parts.append(
                f"{type(layer).__name__}:{json.dumps(settings, sort_keys=True, default=repr)}"
            )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def synchronize_batchnorm(models: GanModels) -> None:
    """Let every BatchNormalization layer use the statistics of the whole global
    batch when training on several replicas (each replica's own batch otherwise)."""
    for network in (models.generator, models.discriminator):
        for layer in network.layers if network is not None else ():
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True


def average_of(generator: keras.Model) -> keras.Model:
    """A copy of ``generator`` with the same weights, to hold their moving average."""
    average = keras.models.clone_model(generator)
    average.set_weights(generator.get_weights())
    return average
