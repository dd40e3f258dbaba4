"""New images from a trained generator: samples, a chosen class, latent walks."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from gan_mnist.models.base import GanModels


def sample(
    models: GanModels, n: int, seed: int, label: int | None = None, batch_size: int = 500
) -> tuple[np.ndarray, np.ndarray | None]:
    """Generate ``n`` images from seeded noise.

    Args:
        label: for conditional models, the class to draw (default: uniform over the
            ten classes); must be None for unconditional ones.

    Returns:
        (images (n, 28, 28) uint8, 0 = black background, 255 = white ink, like MNIST;
        their class ids (n,) uint8 for conditional models, else None).
    """
    if label is not None and not models.conditional:
        raise ValueError(f"the {models.family.name} model cannot be asked for a class")
    rng = tf.random.Generator.from_seed(seed)
    images, labels = [], []
    for start in range(0, n, batch_size):
        noise, classes = models.draw_latents(rng, min(batch_size, n - start), label)
        images.append(models.to_uint8(models.generate(noise, classes, training=False)))
        if classes is not None:
            labels.append(classes.numpy().astype(np.uint8))
    return np.concatenate(images), (np.concatenate(labels) if labels else None)


def generate_images(
    models: GanModels, n: int, seed: int, label: int | None = None, batch_size: int = 500
) -> np.ndarray:
    """The images of `sample`: (n, 28, 28) uint8."""
    return sample(models, n, seed, label, batch_size)[0]


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from ``a`` (t = 0) to ``b`` (t = 1), row by row.

    Gaussian noise vectors lie near a sphere of radius sqrt(noise_dim); a straight
    line between two of them passes closer to the centre, where the generator saw
    no noise in training, and fades the images. The arc stays on the shell.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.sum(a * b, -1, keepdims=True) / (
        np.linalg.norm(a, axis=-1, keepdims=True) * np.linalg.norm(b, axis=-1, keepdims=True)
    )
    theta = np.arccos(np.clip(cos, -1.0, 1.0))
    sin = np.sin(theta)
    safe = np.where(sin < 1e-6, 1.0, sin)
    arc = (np.sin((1 - t) * theta) * a + np.sin(t * theta) * b) / safe
    line = (1 - t) * a + t * b  # (nearly) parallel vectors: the arc is the line
    return np.where(sin < 1e-6, line, arc).astype(np.float32)


def noise_walk(
    models: GanModels,
    seed: int,
    walks: int = 8,
    keypoints: int = 4,
    steps: int = 12,
    label: int | None = None,
) -> list[np.ndarray]:
    """Frames of ``walks`` parallel walks through noise space, looping back to the start.

    Each walk visits ``keypoints`` fixed noise vectors (drawn from ``seed``), with
    ``steps`` frames from one to the next. Unconditional: a frame is (walks, 28, 28).
    Conditional: the same walks for each class (or only ``label``), a frame is
    (rows * walks, 28, 28) with one row per class.

    Returns:
        keypoints * steps frames of uint8 images; frame k * steps shows exactly the
        images of keypoint k.
    """
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((keypoints, walks, models.noise_dim)).astype(np.float32)
    classes = [label] if label is not None else range(models.num_classes)
    frames = []
    for k in range(keypoints):
        start, end = points[k], points[(k + 1) % keypoints]
        for s in range(steps):
            noise = start if s == 0 else slerp(start, end, s / steps)
            if not models.conditional:
                images = models.generate(noise, training=False)
            else:
                rows = len(classes)
                labels = np.repeat(np.asarray(list(classes)), walks)
                images = models.generate(np.tile(noise, (rows, 1)), labels, training=False)
            frames.append(models.to_uint8(images))
    return frames


def class_walk(models: GanModels, seed: int, walks: int = 8, steps: int = 12) -> list[np.ndarray]:
    """Frames of a walk from class 0 to 1, ..., the last and back to 0 at fixed noise.

    Conditional models only: the generator's class input moves linearly from one
    one-hot vector to the next, so each of the ``walks`` fixed noise vectors keeps
    its style while the class changes. A frame is (walks, 28, 28) uint8; frame
    c * steps shows exactly class c.
    """
    if not models.conditional:
        raise ValueError(f"the {models.family.name} model has no classes to walk between")
    noise = np.random.default_rng(seed).standard_normal((walks, models.noise_dim))
    noise = noise.astype(np.float32)
    classes = models.num_classes
    eye = np.eye(classes, dtype=np.float32)
    frames = []
    for c in range(classes):
        for s in range(steps):
            t = s / steps
            mixture = (1 - t) * eye[c] + t * eye[(c + 1) % classes]
            images = models.generate(noise, np.tile(mixture, (walks, 1)), training=False)
            frames.append(models.to_uint8(images))
    return frames
