"""Helpers for Part 2 of GAN_MNIST_Notebook.ipynb: a live preview per epoch, and
`run_folder` (from `runfolder`), its runs' folders named from their settings."""

from __future__ import annotations

from pathlib import Path

from gan_mnist.runfolder import run_folder  # noqa: F401  (the notebook imports it here)


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
