"""Files a run leaves behind: image grids, GIF, montage, ZIP, loss plot, model diagrams.

Every writer goes through `atomic_path`: the file is written under a temporary
name and renamed into place, so a crash never leaves a half-written artifact.
"""

from __future__ import annotations

import math
import re
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gan_mnist.files import GIF_NAME, IMAGES_DIR, MONTAGE_NAME, ZIP_NAME, atomic_path
from gan_mnist.guards import fault_point

_EPOCH_IMAGE = re.compile(r"image_at_epoch_(\d{4,})\.png$")


def epoch_image_path(out_dir: Path, epoch: int) -> Path:
    return Path(out_dir) / IMAGES_DIR / f"image_at_epoch_{epoch:04d}.png"


def epoch_images(out_dir: Path) -> list[tuple[int, Path]]:
    """The (epoch, path) of every per-epoch grid on disk, in epoch order."""
    folder = Path(out_dir) / IMAGES_DIR
    found = [
        (int(m.group(1)), p)
        for p in folder.glob("image_at_epoch_*.png")
        if (m := _EPOCH_IMAGE.search(p.name))
    ]
    return sorted(found)


def image_grid(
    images: np.ndarray, columns: int | None = None, scale: int = 4, padding: int = 2
) -> np.ndarray:
    """Tile images into one picture.

    Args:
        images: (N, H, W) or (N, H, W, 1) uint8, white ink on black.
        columns: images per row (default: a square grid, 4 for 16 images).
        scale: each pixel becomes scale x scale pixels (nearest neighbour: crisp digits).
        padding: grey pixels between images, before scaling.

    Returns:
        (rows * (H + padding) + padding) * scale by the same for columns, uint8.
    """
    images = np.asarray(images).reshape(len(images), *np.shape(images)[1:3])
    n, h, w = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full(
        (rows * (h + padding) + padding, columns * (w + padding) + padding), 96, dtype=np.uint8
    )
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top : top + h, left : left + w] = image
    return np.kron(grid, np.ones((scale, scale), dtype=np.uint8))


def save_png(array: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    return path


def save_grid(images_uint8: np.ndarray, path: str | Path, columns: int | None = None) -> Path:
    """Write `image_grid` of the images to a PNG."""
    return save_png(image_grid(images_uint8, columns), path)


def write_gif(frames: Sequence[Path], path: Path, seconds_per_frame: float = 0.25) -> Path:
    """An animated GIF of the PNG frames, in order, looping forever."""
    import imageio.v3 as iio

    return write_gif_frames([iio.imread(p) for p in frames], path, seconds_per_frame)


def write_gif_frames(
    pictures: Sequence[np.ndarray], path: Path, seconds_per_frame: float = 0.25
) -> Path:
    """An animated GIF of uint8 pictures (H, W), in order, looping forever."""
    import imageio.v3 as iio

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.stack(pictures), duration=int(seconds_per_frame * 1000), loop=0)
    return path


def write_montage(frames: Sequence[tuple[int, Path]], path: Path, columns: int = 10) -> Path:
    """All epoch grids in one PNG, ``columns`` per row, each labelled with its epoch."""
    pictures = [np.asarray(Image.open(p).convert("L")) for _, p in frames]
    h, w = pictures[0].shape
    label_h = 14
    columns = min(columns, len(pictures))
    rows = math.ceil(len(pictures) / columns)
    sheet = Image.new("L", (columns * w, rows * (h + label_h)), color=255)
    draw = ImageDraw.Draw(sheet)
    for i, ((epoch, _), picture) in enumerate(zip(frames, pictures, strict=True)):
        r, c = divmod(i, columns)
        draw.text((c * w + 4, r * (h + label_h) + 1), f"epoch {epoch}", fill=0)
        sheet.paste(Image.fromarray(picture), (c * w, r * (h + label_h) + label_h))
    return save_png(np.asarray(sheet), path)


def write_zip(files: Sequence[Path], path: Path) -> Path:
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for file in files:
                archive.write(file, arcname=Path(file).name)
    return path


def write_epoch_summaries(out_dir: Path) -> list[Path]:
    """Rebuild the GIF, montage and ZIP from the epoch PNGs on disk.

    Built from the files rather than from memory, so after any number of resumes
    each epoch appears exactly once.
    """
    out_dir = Path(out_dir)
    frames = epoch_images(out_dir)
    if not frames:
        return []
    paths = [p for _, p in frames]
    gif = write_gif(paths, out_dir / GIF_NAME)
    fault_point("summaries")  # the GIF is rebuilt, the montage and ZIP not yet
    return [
        gif,
        write_montage(frames, out_dir / MONTAGE_NAME),
        write_zip(paths, out_dir / ZIP_NAME),
    ]


def plot_losses(history: Sequence[dict], path: Path) -> Path:
    """d_loss and g_loss per epoch, as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: works under any backend

    epochs = [int(row["epoch"]) for row in history]
    figure = Figure(figsize=(6, 3.5), dpi=100)
    axes = figure.add_subplot()
    for key in ("d_loss", "g_loss"):
        axes.plot(epochs, [float(row[key]) for row in history], marker="o", label=key)
    axes.set_xlabel("epoch")
    axes.set_ylabel("mean loss")
    axes.set_title("GAN losses per epoch")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


GRAPHVIZ_HINT = (
    "note: Graphviz's `dot` is not installed, so the model diagrams are skipped. "
    "Get it with `apt-get install graphviz` (Debian/Ubuntu/Colab) or `brew install "
    "graphviz` (macOS), then rerun."
)


def plot_model_diagrams(models: dict[str, object], out_dir: Path) -> list[Path]:
    """`keras.utils.plot_model` of each model to ``out_dir/NAME.png``.

    Without Graphviz (or pydot) this prints one line saying how to get it and
    returns the diagrams it could draw: a missing diagram never stops a run.
    """
    import keras

    if shutil.which("dot") is None:
        print(GRAPHVIZ_HINT)
        return []
    written = []
    for name, model in models.items():
        path = Path(out_dir) / f"{name}.png"
        try:
            with atomic_path(path) as tmp:
                keras.utils.plot_model(model, to_file=str(tmp), show_shapes=True, dpi=72)
                if not tmp.exists():  # plot_model only prints a message when pydot is missing
                    raise ImportError("pydot is not installed (pip install pydot)")
        except (ImportError, OSError) as error:
            print(f"note: model diagram {path.name} skipped: {error}")
            continue
        written.append(path)
    return written
