"""The GAN losses (``--loss``): what the discriminator and the generator minimise.

Each loss gives per-example values (batch,) from the discriminator's logits
(batch, 1); the training step averages them over the *global* batch, so the same
code is right on one device and on several replicas.

This registry is read by the CLI's flag checks, so TensorFlow is imported inside
the functions, when a loss is first computed, not when this module is.
"""

from __future__ import annotations

from dataclasses import dataclass


def _tf():
    import tensorflow as tf

    return tf


@dataclass(frozen=True)
class GanLoss:
    """A pair of losses on logits; subclasses define `discriminator` and `generator`."""

    name: str
    summary: str

    def discriminator(self, real_logits, fake_logits):
        """Per-example loss (batch,) of the discriminator on a real and a fake batch."""
        raise NotImplementedError

    def generator(self, fake_logits):
        """Per-example loss (batch,) of the generator on the discriminator's verdicts."""
        raise NotImplementedError


class NonSaturating(GanLoss):
    """Binary cross-entropy: D calls real images 1 and fakes 0; G asks D to call its
    fakes real, -log D(G(z)), the tutorial's loss (Goodfellow et al. 2014).

    Minimising log(1 - D(G(z))), the literal minimax objective, gives almost no
    gradient early on when D easily rejects the fakes; -log D(G(z)) gives strong
    gradients exactly then.
    """

    def discriminator(self, real_logits, fake_logits):
        tf = _tf()
        # softplus(-x) = -log(sigmoid(x)): binary cross-entropy on logits, which stays
        # finite even when D is very sure (log(sigmoid(x)) underflows for x << 0).
        return tf.reduce_sum(tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits), -1)

    def generator(self, fake_logits):
        tf = _tf()
        return tf.reduce_sum(tf.nn.softplus(-fake_logits), -1)


class Hinge(GanLoss):
    """The hinge loss of SNGAN and BigGAN: D wants real logits >= 1 and fake ones
    <= -1 (no reward beyond the margin); G raises the fakes' logits."""

    def discriminator(self, real_logits, fake_logits):
        tf = _tf()
        return tf.reduce_sum(tf.nn.relu(1.0 - real_logits) + tf.nn.relu(1.0 + fake_logits), -1)

    def generator(self, fake_logits):
        return -_tf().reduce_sum(fake_logits, -1)


class LeastSquares(GanLoss):
    """LSGAN (Mao et al. 2017): squared distance of the logits from 1 (real) and 0
    (fake); it penalises fakes by how far they are, not only which side they are on."""

    def discriminator(self, real_logits, fake_logits):
        tf = _tf()
        return 0.5 * tf.reduce_sum(tf.square(real_logits - 1.0) + tf.square(fake_logits), -1)

    def generator(self, fake_logits):
        tf = _tf()
        return 0.5 * tf.reduce_sum(tf.square(fake_logits - 1.0), -1)


LOSSES: dict[str, GanLoss] = {
    loss.name: loss
    for loss in (
        NonSaturating("nonsaturating", "binary cross-entropy, -log D(G(z)) for G (tutorial)"),
        Hinge("hinge", "hinge loss (SNGAN, BigGAN)"),
        LeastSquares("least_squares", "least squares (LSGAN)"),
    )
}
