"""The `tf.GradientTape` training step: the heart of the project."""

from __future__ import annotations

import keras
import tensorflow as tf

from gan_mnist.losses import GanLoss
from gan_mnist.models.base import GanModels


def make_train_step(
    models: GanModels,
    loss: GanLoss,
    generator_optimizer: keras.optimizers.Optimizer,
    discriminator_optimizer: keras.optimizers.Optimizer,
    rng: tf.random.Generator,
    global_batch_size: int,
):
    """Build the step that trains both networks on one batch (not compiled).

    The caller compiles it (`tf.function`), on one device or, per replica, under a
    `tf.distribute` strategy: nothing in it depends on which.

    Args:
        models: the generator and discriminator of any family.
        loss: the `GanLoss` both networks minimise (see `gan_mnist.losses`).
        generator_optimizer, discriminator_optimizer: one Adam each, since the two
            networks play opposite sides of the game.
        rng: draws the noise (and, for conditional families, the fakes' classes); it
            is part of the checkpoint, so a resumed run goes on with fresh noise.
        global_batch_size: images per step over all replicas; losses are averaged
            over it, so the replicas' gradients add up to the whole batch's.

    Returns:
        ``train_step(images, labels, noise=None, fake_labels=None) -> {"d_loss",
        "g_loss"}`` with images (batch, 28, 28, 1) in the family's pixel range and
        labels (batch,) int. The noise (and a conditional family's classes for the
        fakes) are drawn from ``rng`` unless given (tests pass them to compare devices).
    """

    def average(per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)

    def train_step(images, labels, noise=None, fake_labels=None):
        batch = tf.shape(images)[0]
        drawn_noise, drawn_labels = models.draw_latents(rng, batch)  # (batch, noise_dim)
        noise = drawn_noise if noise is None else noise
        fake_labels = drawn_labels if fake_labels is None else fake_labels

        # One forward pass, two tapes: each network's loss is differentiated only
        # with respect to its own weights. The discriminator is thus "frozen" in the
        # generator's update without any trainable=False switching.
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = models.generate(noise, fake_labels, training=True)
            real_logits, real_classes = models.judge(images, labels, training=True)
            fake_logits, fake_classes = models.judge(generated_images, fake_labels, training=True)
            # A family with a class head (cdcgan) adds a classification loss: D learns
            # the classes from real images only, G must draw the class it was asked for.
            g_loss = average(
                loss.generator(fake_logits) + models.class_loss(fake_classes, fake_labels)
            )
            d_loss = average(
                loss.discriminator(real_logits, fake_logits)
                + models.class_loss(real_classes, labels)
            )
            # Mixed precision: each loss is multiplied by its optimizer's loss scale, so
            # float16 gradients do not underflow; apply_gradients divides it out again.
            # Without it, scale_loss returns the loss unchanged.
            scaled_g_loss = generator_optimizer.scale_loss(g_loss)
            scaled_d_loss = discriminator_optimizer.scale_loss(d_loss)

        generator = models.generator
        discriminator = models.discriminator
        gen_grads = gen_tape.gradient(scaled_g_loss, generator.trainable_variables)
        disc_grads = disc_tape.gradient(scaled_d_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(
            zip(gen_grads, generator.trainable_variables, strict=True)
        )
        discriminator_optimizer.apply_gradients(
            zip(disc_grads, discriminator.trainable_variables, strict=True)
        )
        return {"d_loss": d_loss, "g_loss": g_loss}

    return train_step
