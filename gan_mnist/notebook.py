"""Helpers for Part 2 of GAN_MNIST_Notebook.ipynb: run folders named from their
settings (also `gan-mnist train`'s folder when no --out is given), animated GIFs and
wide PNGs shown inline, and a live preview per epoch."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

# Settings that say how long or where a run trains, not which run it is.
RUN_LENGTH_SETTINGS = {
    "epochs", "checkpoint_every", "checkpoint_minutes", "save_generator_every", "eval_every",
    "eval_samples", "strategy", "jit_compile", "mixed_precision", "steps_per_call", "data",
}  # fmt: skip


def run_folder(
    config, root: str | Path = "runs", models=None, starts_from: str | None = None
) -> Path:
    """An output folder named from the settings that define a run (and the fingerprint
    of ``models``, networks built outside the package, and ``starts_from``, the name of
    the run whose trained weights they hold), so that changing any of them trains a new
    run instead of resuming (or refusing) the old one; a longer ``epochs`` continues
    the same run."""
    from dataclasses import asdict

    defining = {k: v for k, v in asdict(config).items() if k not in RUN_LENGTH_SETTINGS}
    if models is not None:
        from gan_mnist.models.base import fingerprint

        defining["architecture"] = fingerprint(models)
    if starts_from is not None:
        defining["starts_from"] = starts_from
    digest = hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()[:8]
    seed = "" if config.seed is None else f"-seed{config.seed}"
    name = f"{config.model}-{config.dataset}-f{config.base_filters}-b{config.batch_size}{seed}"
    return Path(root) / f"{name}-{digest}"


def show_gif(path: str | Path, width: int = 280) -> object:
    """An animated GIF embedded in the notebook (it plays in Jupyter and Colab alike)."""
    import base64

    from IPython.display import HTML

    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return HTML(f'<img src="data:image/gif;base64,{data}" width="{width}"/>')


def show_image(path: str | Path, width: int | None = None) -> object:
    """A PNG at a readable width (the montage of many epochs is thousands of pixels)."""
    from IPython.display import Image

    return Image(filename=str(path), width=width)


class LivePreview:
    """An `on_epoch_end` callback that shows each epoch's grid in one notebook output."""

    def __init__(self, width: int = 280):
        self.width = width
        self.handle = None

    def __call__(self, epoch: int, logs: dict) -> None:
        from IPython.display import Image, display

        image = Image(filename=str(Path(logs["image_path"])), width=self.width)
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
