"""The GAN losses and the `tf.GradientTape` training step: the heart of the project."""

from __future__ import annotations

import keras
import tensorflow as tf

from gan_mnist.models import GanModels


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Binary cross-entropy: real images should score 1, generated images 0.

    Args:
        real_logits, fake_logits: the discriminator's raw outputs (batch, 1).

    Returns:
        The scalar loss averaged over the batch (over the global batch under
        `tf.distribute`, so replicas' gradients add up correctly).
    """
    # from_logits=True folds the sigmoid into the loss, which stays finite even
    # when the discriminator is very sure (log(sigmoid(x)) underflows for x << 0).
    real = keras.losses.binary_crossentropy(
        tf.ones_like(real_logits), real_logits, from_logits=True
    )
    fake = keras.losses.binary_crossentropy(
        tf.zeros_like(fake_logits), fake_logits, from_logits=True
    )
    return tf.nn.compute_average_loss(real + fake)


def generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """The non-saturating generator loss: -log D(G(z)).

    Minimising log(1 - D(G(z))), the literal minimax objective, gives almost no
    gradient early on when D easily rejects the fakes; asking D to call the fakes
    real (label 1) gives strong gradients exactly then (Goodfellow et al. 2014).
    """
    per_example = keras.losses.binary_crossentropy(
        tf.ones_like(fake_logits), fake_logits, from_logits=True
    )
    return tf.nn.compute_average_loss(per_example)


def make_train_step(
    models: GanModels,
    generator_optimizer: keras.optimizers.Optimizer,
    discriminator_optimizer: keras.optimizers.Optimizer,
    rng: tf.random.Generator,
):
    """Build the compiled step that trains both networks on one batch.

    Args:
        models: the generator and discriminator.
        generator_optimizer, discriminator_optimizer: one Adam each, since the two
            networks play opposite sides of the game.
        rng: draws the noise; it is part of the checkpoint, so a resumed run goes on
            with fresh noise instead of replaying the first epochs' noise.

    Returns:
        ``train_step(images, labels) -> {"d_loss", "g_loss"}`` with images
        (batch, 28, 28, 1) in [-1, 1] and labels (batch,) int (used only by
        conditional models).
    """

    @tf.function
    def train_step(images, labels):
        noise = rng.normal([tf.shape(images)[0], models.noise_dim])  # (batch, noise_dim)

        # One forward pass, two tapes: each network's loss is differentiated only
        # with respect to its own weights. The discriminator is thus "frozen" in the
        # generator's update without any trainable=False switching.
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = models.generate(noise, labels, training=True)
            real_logits = models.discriminate(images, labels, training=True)
            fake_logits = models.discriminate(generated_images, labels, training=True)
            g_loss = generator_loss(fake_logits)
            d_loss = discriminator_loss(real_logits, fake_logits)

        generator = models.generator
        discriminator = models.discriminator
        gen_grads = gen_tape.gradient(g_loss, generator.trainable_variables)
        disc_grads = disc_tape.gradient(d_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(
            zip(gen_grads, generator.trainable_variables, strict=True)
        )
        discriminator_optimizer.apply_gradients(
            zip(disc_grads, discriminator.trainable_variables, strict=True)
        )
        return {"d_loss": d_loss, "g_loss": g_loss}

    return train_step
