import numpy as np
import pytest

from gan_mnist.config import make_config
from gan_mnist.models import build_discriminator, build_generator, build_models


def test_tutorial_models_have_the_tutorials_parameter_counts():
    assert build_generator(100, 64).count_params() == 2_330_944
    assert build_discriminator(64).count_params() == 212_865


@pytest.mark.parametrize("base_filters", [8, 32])
def test_generator_maps_noise_to_images_in_tanh_range(base_filters):
    generator = build_generator(noise_dim=12, base_filters=base_filters)
    images = np.asarray(generator(np.random.normal(size=(5, 12)).astype("float32")))
    assert images.shape == (5, 28, 28, 1)
    assert images.min() >= -1.0 and images.max() <= 1.0


def test_discriminator_returns_one_unbounded_logit_per_image():
    discriminator = build_discriminator(base_filters=8)
    images = np.random.uniform(-1, 1, size=(3, 28, 28, 1)).astype("float32")
    logits = np.asarray(discriminator(images))
    assert logits.shape == (3, 1)
    # A Dense(1) without activation: no sigmoid squeezing into (0, 1).
    assert discriminator.layers[-1].activation.__name__ == "linear"


def test_build_models_follows_the_config():
    models = build_models(make_config("smoke", noise_dim=7))
    assert models.noise_dim == 7
    assert models.generator.input_shape == (None, 7)
    assert models.conditional is False
    generated = models.generate(np.zeros((2, 7), "float32"), labels=np.array([1, 2]))
    assert models.discriminate(generated).shape == (2, 1)
