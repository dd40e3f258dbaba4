"""A run folder's files and folders, each named once, and how every one of them is
written: atomically, and on the disk before it counts.

Nothing here imports the rest of the package, so every module can use these names
(the lock, the CLI's quick checks before TensorFlow loads, the writers).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

# What a run folder holds, by name.
CHECKPOINT_DIR = "training_checkpoints"
DAMAGED_DIR = "damaged"  # in CHECKPOINT_DIR: checkpoints whose files cannot be read
CONFIG_NAME = "config.json"
# config.json's "format": the mark that a folder holds a run of this package's.
RUN_FORMAT = "gan-mnist run 1"
HISTORY_NAME = "history.csv"  # one row per epoch: losses, time, metrics
GENERATOR_NAME = "generator.keras"  # the final generator (the averaged one with --ema)
BEST_GENERATOR_NAME = "generator_best.keras"  # the best by Fréchet distance (--eval-every)
LOSSES_NAME = "losses.png"
METRICS_NAME = "metrics.json"  # written by `gan-mnist evaluate`
IMAGES_DIR = "DCGAN_Images"
GIF_NAME = "dcgan_animation.gif"
MONTAGE_NAME = "dcgan_animation.png"
ZIP_NAME = "dcgan_images.zip"
LOGS_DIR = "logs"  # TensorBoard's event files
GENERATORS_DIR = "generators"  # --save-generator-every K: generator_epoch_NNNN.keras
REAL_DATA_NAME = "real_data.png"  # 25 training images, written when a run starts
DIAGRAM_NAMES = ("Generator_Model", "Discriminator_Model")  # .png, with Graphviz
LOCK_NAME = ".gan-mnist.lock"  # held by the one `train` that writes the folder
RUNS_DIR = "runs"  # where a run without --out (or a notebook run) goes


def pending_best(out_dir: Path) -> Path:
    """Where an evaluated best generator waits until a checkpoint covers its epoch (a
    resume forgets the epochs after its checkpoint, and their best with them): a
    temporary of this process, so a killed run's is removed as stale."""
    return Path(out_dir) / f".tmp{os.getpid()}-pending-{BEST_GENERATOR_NAME}"


def promote_best(out_dir: Path) -> None:
    """After a checkpoint: the best generator it covers becomes the run's."""
    pending = pending_best(out_dir)
    if pending.exists():
        os.replace(pending, Path(out_dir) / BEST_GENERATOR_NAME)
        sync(Path(out_dir))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The file's data reach the disk (fsync) before the rename, and the rename reaches
    it (fsync of the folder) before this returns, so after a power loss or an OS crash
    ``path`` holds either its old or its new contents, never an empty or partial file.
    The temporary name ends with the whole original name, so writers that pick a
    format from it (imageio, Keras' ``.keras`` and ``.weights.h5``) still work.
    """
    path = Path(path)
    tmp = path.with_name(f".tmp{os.getpid()}-{path.name}")
    try:
        yield tmp
        sync(tmp)
        os.replace(tmp, path)  # atomic on POSIX and Windows
        sync(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def sync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() and hasattr(os, "O_DIRECTORY") else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # a folder cannot be opened on some systems (Windows): nothing to sync
        return
    try:
        os.fsync(fd)
    except OSError:  # Windows cannot fsync a read-only handle: nothing more to do there
        pass
    finally:
        os.close(fd)
