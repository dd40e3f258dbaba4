"""Drawing new digits from a trained generator."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from gan_mnist.data import to_uint8
from gan_mnist.models import GanModels


def generate_images(models: GanModels, n: int, seed: int, batch_size: int = 500) -> np.ndarray:
    """Generate ``n`` digits from seeded noise.

    Returns:
        (n, 28, 28) uint8, 0 = black background, 255 = white ink, like MNIST.
    """
    rng = tf.random.Generator.from_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        noise = rng.normal([min(batch_size, n - start), models.noise_dim])
        chunks.append(to_uint8(models.generate(noise, training=False))[..., 0])
    return np.concatenate(chunks)
