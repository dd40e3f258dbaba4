"""The GAN losses on logits whose values are known by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf

from gan_mnist.losses import LOSSES

LN2 = math.log(2)


def per_example(values):
    return tf.constant(np.asarray(values, np.float32).reshape(-1, 1))


@pytest.mark.parametrize(
    "name, real, fake, d_expected, g_expected",
    [
        # D undecided (logit 0 = probability 0.5): each cross-entropy term is ln 2.
        ("nonsaturating", [0.0], [0.0], [2 * LN2], [LN2]),
        # softplus(-2) + softplus(-3) and softplus(3) at logits real 2, fake -3.
        (
            "nonsaturating",
            [2.0],
            [-3.0],
            [math.log1p(math.exp(-2)) + math.log1p(math.exp(-3))],
            [math.log1p(math.exp(3))],
        ),
        # Hinge: no loss beyond the margins (real >= 1, fake <= -1); G's loss is -logit.
        ("hinge", [1.5, 0.0], [-2.0, 0.5], [0.0, 1.0 + 1.5], [2.0, -0.5]),
        # Least squares: 0.5 * ((real - 1)^2 + fake^2) and 0.5 * (fake - 1)^2.
        ("least_squares", [1.0, 3.0], [0.0, -1.0], [0.0, 0.5 * (4 + 1)], [0.5, 0.5 * 4]),
    ],
)
def test_losses_on_known_logits(name, real, fake, d_expected, g_expected):
    loss = LOSSES[name]
    d = loss.discriminator(per_example(real), per_example(fake)).numpy()
    g = loss.generator(per_example(fake)).numpy()
    assert d.shape == (len(real),) and g.shape == (len(fake),)  # per example, not reduced
    np.testing.assert_allclose(d, d_expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g, g_expected, rtol=1e-6, atol=1e-6)


def test_nonsaturating_generator_loss_is_strong_when_d_rejects_the_fakes():
    loss = LOSSES["nonsaturating"]
    # A generator that fools D completely has a loss near 0 ...
    assert float(loss.generator(per_example([20.0]))[0]) < 1e-6
    # ... and a hopeless one a large loss (strong gradient), finite even for extreme logits.
    hopeless = float(loss.generator(per_example([-200.0]))[0])
    assert math.isfinite(hopeless) and hopeless > 100
    d = float(loss.discriminator(per_example([300.0]), per_example([-300.0]))[0])
    assert math.isfinite(d) and d < 1e-6
