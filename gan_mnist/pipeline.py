"""Pixels and the input pipeline: each model family's pixel range, the scaling of
uint8 images into it and back, and one epoch's `tf.data` pipeline (shuffle, batch,
scale). TensorFlow is imported only where a function needs it."""

from __future__ import annotations

import numpy as np

# A model family declares the range its generator draws pixels in: (-1, 1) after a
# tanh, (0, 1) after a sigmoid. Real images are scaled to the same range, or the
# discriminator could tell real from fake by brightness alone.
PixelRange = tuple[float, float]
TANH_RANGE: PixelRange = (-1.0, 1.0)


def to_model_range(images_uint8, pixel_range: PixelRange = TANH_RANGE):
    """uint8 pixels 0..255 -> float32 in ``pixel_range`` ([-1, 1] for a tanh generator)."""
    import tensorflow as tf

    low, high = pixel_range
    return tf.cast(images_uint8, tf.float32) * ((high - low) / 255.0) + low


def to_uint8(images, pixel_range: PixelRange = TANH_RANGE) -> np.ndarray:
    """Images in ``pixel_range``, any shape -> uint8 0..255 (0 = black background)."""
    low, high = pixel_range
    pixels = (np.asarray(images, dtype=np.float32) - low) * (255.0 / (high - low))
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    seed: int,
    pixel_range: PixelRange = TANH_RANGE,
    epoch: int = 1,
    skip_batches: int = 0,
):
    """One epoch of the training pipeline: shuffle, batch, scale to the model's range.

    Args:
        images: (N, 28, 28) uint8. labels: (N,) ints 0..9.
        seed, epoch: the epoch's order is a permutation drawn from (seed, epoch), so a
            run that resumes mid-epoch sees exactly the batches it had left, and two
            runs with one seed see the same batches.
        pixel_range: the model family's, (-1, 1) for a tanh generator.
        skip_batches: batches of this epoch already trained (when resuming).

    Returns:
        A `tf.data.Dataset` of (images (batch, 28, 28, 1) float32 in ``pixel_range``,
        labels (batch,) int32). ``drop_remainder`` keeps every batch full, so the
        last short batch never meets a full-size batch of noise.
    """
    import tensorflow as tf

    order = np.random.default_rng([seed, epoch]).permutation(len(images))
    order = order[skip_batches * batch_size :]
    dataset = tf.data.Dataset.from_tensor_slices(
        (images[order][..., np.newaxis], labels[order].astype(np.int32))
    )
    # No tf.data autotuning: its background thread made deleting each epoch's iterator
    # wait for it, 0 to 20 s at the end of every epoch (measured here, growing with
    # the run). Scaling a batch is cheap; two batches ready ahead are enough.
    options = tf.data.Options()
    options.autotune.enabled = False
    return (
        dataset.batch(batch_size, drop_remainder=True)
        .map(lambda x, y: (to_model_range(x, pixel_range), y))
        .prefetch(2)
        .with_options(options)
    )
