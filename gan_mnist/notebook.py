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
    """True in Google Colab (its `google.colab` module is importable)."""
    import importlib.util

    return "google.colab" in sys.modules or importlib.util.find_spec("google.colab") is not None


def has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def default_preset() -> str:
    """`tutorial` (the classic settings, ~1 h) with a GPU, `demo` (minutes) without."""
    return "tutorial" if has_gpu() else "demo"


def run_folder(config, root: str | Path = "runs") -> Path:
    """An output folder named from the settings that define a run, so that changing a
    setting trains a new run instead of resuming (or refusing) the old one."""
    name = (
        f"{config.model}-{config.dataset}-f{config.base_filters}-b{config.batch_size}"
        f"-lr{config.gen_lr:g}-{config.disc_lr:g}-{config.loss}-seed{config.seed}"
    )
    return Path(root) / name


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
