"""A folder of your own images as a data set (``--data FOLDER``).

The layout is that of `keras.utils.image_dataset_from_directory`: the images directly
in the folder (one class, named after the folder), or one subfolder per class (the
images anywhere below it), the classes in the sorted order of their folders' names.
Not both: Keras would silently ignore the images at the top, so a folder that has
images there and in subfolders is refused. Hidden files and folders (``.DS_Store``,
a macOS zip's ``__MACOSX/`` with its ``._*`` files) and files of other kinds are
skipped, and counted in one line.

Each image becomes what today's networks take, 28×28 grey (`to_square`):

1. orientation: a photo's EXIF rotation applied; 16-bit or float grey scaled to 0-255;
   transparency: laid onto white if its visible pixels are mostly dark (dark strokes
   on nothing), else onto black, so the strokes stay visible;
2. grey: ITU-R 601-2 luma, L = 0.299 R + 0.587 G + 0.114 B (Pillow's mode "L");
3. size: scaled, keeping its aspect ratio, until its longer side is 28 pixels
   (Lanczos filter), and centred on a 28×28 square of its background, the median of
   its border pixels.

An image must be at least `MIN_SIDE` pixels on each side. The images train as they
are: dark ink on light paper draws dark on light (MNIST is light on dark); the data
line says which (`polarity`). Every file is read, and so checked, when the folder is
first read; the arrays are then cached, keyed by the digest of the image files'
names and contents (`folder_digest`), so an edited folder is read again. Nothing in
the folder is ever changed or written to.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan_mnist.errors import UserError, first_line

SIDE = 28  # the networks' image size
MIN_SIDE = 8  # smaller images are refused: too little to scale up
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
KINDS = "PNG, JPEG, BMP, GIF, WebP or TIFF"
ONE_CLASS = "images"  # the class of a folder whose images are all directly in it
CONVERSION = "square-28-lanczos-luma-2"  # part of the cache key: a new conversion reads again


@dataclass(frozen=True)
class Layout:
    """What an image folder holds: its image files and their class ids, the classes'
    names, and how many entries were skipped (hidden, or not images)."""

    files: tuple[Path, ...]
    labels: tuple[int, ...]
    class_names: tuple[str, ...]
    skipped: int


def _hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name == "__MACOSX"


def _images_below(folder: Path) -> tuple[list[Path], int]:
    """The image files anywhere below ``folder`` (sorted) and the skipped entries."""
    images, skipped = [], 0
    for root, dirs, names in os.walk(folder):
        skipped += sum(1 for d in dirs if _hidden(Path(d)))
        dirs[:] = sorted(d for d in dirs if not _hidden(Path(d)))
        for name in sorted(names):
            path = Path(root) / name
            if not _hidden(path) and path.suffix.lower() in SUFFIXES:
                images.append(path)
            else:
                skipped += 1
    return images, skipped


def layout(folder: str | Path) -> Layout:
    """The images of ``folder`` and their classes (see the module's docstring).

    Raises:
        UserError: a folder that is empty, holds no images, mixes images at its top
            with class folders, or has a class folder without images.
    """
    folder = Path(folder)
    entries = sorted(folder.iterdir())
    visible = [e for e in entries if not _hidden(e)]
    skipped = len(entries) - len(visible)
    top = [e for e in visible if e.is_file() and e.suffix.lower() in SUFFIXES]
    subfolders = [e for e in visible if e.is_dir()]
    skipped += sum(1 for e in visible if e.is_file() and e.suffix.lower() not in SUFFIXES)
    if not visible:
        raise UserError(
            f"--data {folder} is empty{' but for hidden files' if entries else ''}: put "
            f"images ({KINDS}) in it, directly for one class or in one subfolder per class."
        )
    classes = []
    for sub in subfolders:
        found, also_skipped = _images_below(sub)
        skipped += also_skipped
        classes.append((sub.name, found))
    with_images = [(name, found) for name, found in classes if found]
    if top and with_images:
        raise UserError(
            f"--data {folder} holds images both directly in it ({len(top)}) and in "
            f"subfolders ({', '.join(name for name, _ in with_images[:3])}"
            f"{', ...' if len(with_images) > 3 else ''}). Keras would silently leave out "
            "the ones at the top, so this is refused: move them into a subfolder of their "
            "own (a class), or the subfolders' images out."
        )
    if top:  # one class; its name is no one's (the folder's own would change with it)
        skipped += len(subfolders)  # subfolders without images
        return Layout(tuple(top), (0,) * len(top), (ONE_CLASS,), skipped)
    if not classes:
        raise UserError(
            f"--data {folder} holds no images ({skipped} other files skipped): it takes "
            f"{KINDS} files, directly in it for one class or in one subfolder per class."
        )
    empty = [name for name, found in classes if not found]
    if empty:
        raise UserError(
            f"--data {folder}: the class folder {folder / empty[0]} holds no images"
            + (f" (nor do {len(empty) - 1} other class folders)" if len(empty) > 1 else "")
            + f". Put {KINDS} files in it, or move it out of {folder}."
        )
    files = tuple(path for _, found in classes for path in found)
    labels = tuple(i for i, (_, found) in enumerate(classes) for _ in found)
    return Layout(files, labels, tuple(name for name, _ in classes), skipped)


def folder_digest(found: Layout, root: Path) -> str:
    """A digest of the image files' names (relative to ``root``), classes and contents:
    the run's identity and the cache's key. Remembered for the process while no file's
    size or time changes (a run's folder name and its data loading both ask)."""
    stats = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in found.files)
    return _digest(found, Path(root), stats)


@functools.lru_cache(maxsize=8)
def _digest(found: Layout, root: Path, stats: tuple) -> str:
    digest = hashlib.sha256(CONVERSION.encode())
    digest.update("\n".join(found.class_names).encode())
    for path, label in zip(found.files, found.labels, strict=True):
        digest.update(f"\n{path.relative_to(root)}:{label}:".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def to_square(path: Path) -> np.ndarray:
    """One image file as (28, 28) uint8 grey (see the module's docstring).

    Raises:
        ValueError: not a readable image, or smaller than `MIN_SIDE`.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        opened.load()  # decodes the whole file now: a truncated one fails here
        image = ImageOps.exif_transpose(opened)  # a phone's photo, upright
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit or float grey
            values = np.asarray(image, np.float64)
            top = values.max() if values.max() > 0 else 1.0
            image = Image.fromarray(np.round(255 * values / top).astype(np.uint8))
        if min(image.size) < MIN_SIDE:
            raise ValueError(
                f"it is {image.size[0]}×{image.size[1]} pixels, smaller than {MIN_SIDE}×{MIN_SIDE}"
            )
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            alpha = np.asarray(rgba)[..., 3]
            grey = np.asarray(rgba.convert("L"))
            visible = alpha > 127
            dark = visible.any() and grey[visible].mean() < 128
            background = Image.new(
                "RGBA", rgba.size, (255, 255, 255, 255) if dark else (0, 0, 0, 255)
            )
            image = Image.alpha_composite(background, rgba)
        grey = image.convert("L")
    pixels = np.asarray(grey)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if grey.size != (SIDE, SIDE):
        grey = ImageOps.contain(grey, (SIDE, SIDE), Image.Resampling.LANCZOS)
        square = Image.new("L", (SIDE, SIDE), int(np.median(border)))
        square.paste(grey, ((SIDE - grey.size[0]) // 2, (SIDE - grey.size[1]) // 2))
        pixels = np.asarray(square)
    return pixels


def _convert_chunk(paths: list[Path]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """`to_square` for a chunk: (its images, (index, why) of each bad file)."""
    out = np.zeros((len(paths), SIDE, SIDE), np.uint8)
    bad = []
    for i, path in enumerate(paths):
        try:
            out[i] = to_square(path)
        except Exception as error:  # Pillow raises many kinds for a bad file
            bad.append((i, first_line(error)))
    return out, bad


def read_images(found: Layout, workers: int | None = None) -> np.ndarray:
    """Every image of ``found`` as (N, 28, 28) uint8, read by ``workers`` processes.

    Raises:
        UserError: files that are not readable images, or too small: the first named,
            with how many others were bad and how many were fine.
    """
    files = list(found.files)
    workers = workers or min(os.cpu_count() or 1, 8)
    size = max(1, min(2000, -(-len(files) // (workers * 4))))
    chunks = [files[i : i + size] for i in range(0, len(files), size)]
    if workers == 1 or len(chunks) == 1:
        results = list(map(_convert_chunk, chunks))
    else:
        # Fresh workers, not forks: the caller may run TensorFlow's threads already.
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            results = list(pool.map(_convert_chunk, chunks))
    bad = [
        (chunk[i], why)
        for chunk, (_, failed) in zip(chunks, results, strict=True)
        for i, why in failed
    ]
    if bad:
        path, why = bad[0]
        others = f" (and {len(bad) - 1} more like it)" if len(bad) > 1 else ""
        raise UserError(
            f"--data: {path} is not a usable image ({why}){others}; the other "
            f"{len(files) - len(bad)} files were fine. Remove or replace it (images must be "
            f"{KINDS} files, at least {MIN_SIDE}×{MIN_SIDE} pixels), then run the same "
            "command again."
        )
    return np.concatenate([images for images, _ in results])


def polarity(images: np.ndarray) -> str:
    """ "light on dark" (MNIST's way) or "dark on light", by the images' borders."""
    border = np.concatenate(
        [images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1
    )
    return "dark on light" if np.median(border) > 127 else "light on dark"
