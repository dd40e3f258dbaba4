"""Each model family: pinned parameter counts, shapes, pixel ranges, label inputs."""

import numpy as np
import pytest
import tensorflow as tf

from gan_mnist.config import make_config
from gan_mnist.models import FAMILIES, build_models, cdcgan, dcgan, infogan_nets, mlp

# (generator, discriminator) parameters at base_filters 64, noise_dim 100.
PARAMETERS = {
    "dcgan": (2_330_944, 212_865),  # the TensorFlow tutorial's, exactly
    # dcgan + the one-hot's 10 extra inputs to the first Dense (10 * 12,544 = 125,440);
    # D + the class projection, a bias-free Dense 10 -> 6,272 (62,720), and the class
    # head, a Dense 6,272 -> 10 (62,730).
    "cdcgan": (2_456_384, 338_315),
    "mlp": (1_493_520, 533_505),  # 100-256-512-1024-784 with BatchNorm; 784-512-256-1
    # InfoGAN's, by hand: G 100*1024 + BN 4,096 + 1024*6,272 + BN 25,088 + 4*4*128*64
    # + BN 256 + 4*4*64 + 1; D 4*4*64 + 64 + 4*4*64*128 + BN 512 + 6,272*1024 + BN
    # 4,096 + 1,025 (6,647,553 for G with the paper's 62-d noise).
    "infogan-nets": (6_686_465, 6_560_321),
}
MODULES = {"dcgan": dcgan, "cdcgan": cdcgan, "mlp": mlp, "infogan-nets": infogan_nets}


def test_every_registered_family_has_pinned_parameter_counts():
    assert set(PARAMETERS) == set(FAMILIES)
    for name, (g, d) in PARAMETERS.items():
        module = MODULES[name]
        assert module.build_generator(100, 64).count_params() == g, name
        assert module.build_discriminator(64).count_params() == d, name


@pytest.mark.parametrize("family", list(FAMILIES))
def test_generator_draws_images_in_the_familys_pixel_range(family):
    models = build_models(make_config("smoke", model=family, noise_dim=12))
    noise, labels = models.draw_latents(tf.random.Generator.from_seed(0), 5)
    images = np.asarray(models.generate(noise, labels))
    low, high = FAMILIES[family].pixel_range
    assert images.shape == (5, 28, 28, 1)
    assert images.min() >= low and images.max() <= high
    assert images.min() < (low + high) / 2 < images.max()  # not stuck at one end
    logits = np.asarray(models.discriminate(images, labels))
    assert logits.shape == (5, 1)
    # No sigmoid: the loss takes raw logits.
    assert models.discriminator.layers[-1].get_config().get("activation", "linear") == "linear"


def test_pixel_ranges_are_declared_per_family():
    assert FAMILIES["dcgan"].pixel_range == (-1.0, 1.0)
    assert FAMILIES["mlp"].pixel_range == (0.0, 1.0)
    assert mlp.build_generator(10, 8).layers[-2].get_config()["activation"] == "sigmoid"


def test_conditional_family_draws_what_it_is_asked_for():
    models = build_models(make_config("smoke", model="cdcgan"))
    rng = tf.random.Generator.from_seed(1)
    noise, labels = models.draw_latents(rng, 6, labels=3)
    assert labels.numpy().tolist() == [3] * 6
    _, drawn = models.draw_latents(rng, 2000)
    assert sorted(set(drawn.numpy().tolist())) == list(range(10))  # all classes, at random
    # The label is an input of both networks: another class, other images and logits.
    same_noise = tf.tile(noise[:1], [2, 1])
    images = models.generate(same_noise, [0, 9])
    assert not np.allclose(images[0], images[1])
    logits = models.discriminate(tf.tile(images[:1], [2, 1, 1, 1]), [0, 9])
    assert not np.isclose(logits[0, 0], logits[1, 0])


def test_unconditional_families_have_no_labels():
    models = build_models(make_config("smoke", model="dcgan"))
    noise, labels = models.draw_latents(tf.random.Generator.from_seed(1), 4)
    assert labels is None and noise.shape == (4, 100)


def test_conditional_preview_is_one_row_per_class_with_shared_noise():
    models = build_models(make_config("smoke", model="cdcgan"))
    fixed = tf.random.normal([3, models.noise_dim])
    noise, labels = models.preview_latents(fixed)
    assert labels.numpy().tolist() == [c for c in range(10) for _ in range(3)]
    np.testing.assert_array_equal(noise[3:6], fixed)  # row 1 = the same 3 noise vectors
    assert models.preview_columns(3) == 3
    assert build_models(make_config("smoke")).preview_columns(16) is None  # square grid
