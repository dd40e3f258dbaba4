"""Small helpers for GAN_MNIST_Notebook.ipynb: show real source, preview epochs live.

They live in the package so the notebook defines nothing of its own and cannot
drift from the code it teaches.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path


def show_source(obj) -> object:
    """The real source of a function or class, syntax-highlighted for the notebook."""
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")


def in_colab() -> bool:
    return "google.colab" in sys.modules


def describe_devices() -> str:
    """One paragraph on what TensorFlow will train on, with the fix for a CPU Colab."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"Training on GPU: {', '.join(g.name for g in gpus)}."
    text = "No GPU found: training runs on the CPU (fine for the `smoke` and `demo` presets)."
    if in_colab():
        text += (
            " In Colab, switch with Runtime > Change runtime type > Hardware accelerator: "
            "GPU, then run the notebook again from the top."
        )
    return text


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
