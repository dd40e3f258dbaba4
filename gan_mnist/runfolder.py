"""What a folder holds: the one answer that `train`, the CLI, `sample`, `evaluate` and
the app act on; and the folder a new run gets, named from its settings.

A folder is a run of ours only by a mark that only this package writes: the ``format``
key of its ``config.json`` (`RUN_FORMAT`, written when the run starts), or, when that
file was lost, the settings our checkpoints carry inside them. Checkpoint file names
alone say nothing: the TensorFlow tutorial writes ``training_checkpoints/ckpt-*`` too.
Everything here reads files only, and TensorFlow only for a folder whose config.json
is gone, so the CLI can refuse a folder at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from gan_mnist.errors import UserError, first_line
from gan_mnist.files import (
    CHECKPOINT_DIR,
    CONFIG_NAME,
    DAMAGED_DIR,
    LOCK_NAME,
    RUN_FORMAT,
    RUNS_DIR,
)

NOTHING = "nothing"  # missing, empty, or only a start of ours (a lock, temporaries)
RUN = "run"  # a run of ours, with or without checkpoints yet
DAMAGED = "damaged run"  # a run of ours whose checkpoints were all set aside as damaged
RUNS = "runs"  # a folder of runs of ours (runs/ itself): not a run to train into
OTHER = "other files"  # someone else's files


def is_our_config(path: Path) -> bool:
    """Whether ``path`` is a config.json this package wrote (it carries the mark)."""
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(values, dict) and values.get("format") == RUN_FORMAT


def checkpoint_prefixes(folder: str | Path) -> list[str]:
    """The folder's checkpoints, oldest first: each ``training_checkpoints/ckpt-N`` whose
    index file is there. The files are the truth; TensorFlow's ``checkpoint`` file, which
    lists them too, is rebuilt from them when the two differ (`RunCheckpoint`)."""
    directory = Path(folder) / CHECKPOINT_DIR
    numbered = []
    for index in directory.glob("ckpt-*.index"):
        number = re.fullmatch(r"ckpt-(\d+)\.index", index.name)
        if number:
            numbered.append((int(number[1]), str(directory / index.stem)))
    return [path for _, path in sorted(numbered)]


# Where a checkpoint of ours keeps the run's settings (`state.SavedSettings`).
SETTINGS_KEY = "settings/.ATTRIBUTES/py_state"


def saved_settings(folder: str | Path) -> dict | None:
    """What the newest readable checkpoint of ``folder`` holds inside it, the run's
    settings and data digest (``{"config": {...}, "data": ...}``), or None: no
    checkpoint, or not one of ours. The only reader here that needs TensorFlow.

    Raises:
        UserError: none of its checkpoints can be read, so no one can tell.
    """
    prefixes = checkpoint_prefixes(folder)
    if not prefixes:
        return None
    import tensorflow as tf

    for prefix in reversed(prefixes):
        try:
            reader = tf.train.load_checkpoint(prefix)
            if SETTINGS_KEY not in reader.get_variable_to_shape_map():
                return None  # someone else's checkpoints
            return json.loads(reader.get_tensor(SETTINGS_KEY))
        except Exception as error:  # damaged or unreadable: an older one may still tell
            why = first_line(error)
    raise UserError(
        f"{folder} has no {CONFIG_NAME}, and none of its checkpoints can be read ({why}), "
        f"so whether it is a run of ours cannot be told. Restore its {CONFIG_NAME}, or "
        "train into another folder."
    )


def holds(folder: str | Path) -> str:
    """What ``folder`` holds: `NOTHING`, `RUN`, `DAMAGED`, `RUNS` or `OTHER`."""
    folder = Path(folder)
    if not folder.is_dir() or not _entries(folder):
        return NOTHING
    checkpoints = folder / CHECKPOINT_DIR
    if (folder / CONFIG_NAME).exists():
        if not is_our_config(folder / CONFIG_NAME):
            return OTHER
        damaged = checkpoints / DAMAGED_DIR
        set_aside = damaged.is_dir() and any(damaged.iterdir())
        return DAMAGED if set_aside and not checkpoint_prefixes(folder) else RUN
    if checkpoints.is_dir():  # config.json lost, or someone else's checkpoints
        return RUN if saved_settings(folder) is not None else OTHER
    return OTHER if others_files(folder) else RUNS


def _entries(folder: Path) -> list[Path]:
    """What ``folder`` holds besides a start of ours (the lock, temporaries)."""
    return [
        entry
        for entry in sorted(Path(folder).iterdir())
        if entry.name != LOCK_NAME and not entry.name.startswith(".tmp")
    ]


def others_files(folder: Path) -> list[str]:
    """The names in ``folder`` that are neither a start of ours nor a run of ours."""
    return [
        entry.name
        for entry in _entries(folder)
        if not (entry.is_dir() and is_our_config(entry / CONFIG_NAME))
    ]


# Settings that say how long or where a run trains, not which run it is. (The data
# file's path is not the data: its contents are, as `data_digest`.)
RUN_LENGTH_SETTINGS = {
    "epochs", "checkpoint_every", "checkpoint_minutes", "save_generator_every", "eval_every",
    "eval_samples", "strategy", "jit_compile", "mixed_precision", "steps_per_call", "data",
}  # fmt: skip


def run_folder(
    config, root: str | Path = RUNS_DIR, models=None, starts_from: str | None = None
) -> Path:
    """An output folder named from everything that defines a run: its settings, the
    contents of its ``--data`` file (`data_digest`), the fingerprint of ``models``
    (networks built outside the package) and ``starts_from`` (the name of the run whose
    trained weights they hold). Changing any of them trains a new run instead of
    resuming (or refusing) the old one; a longer ``epochs`` continues the same run."""
    from dataclasses import asdict

    defining = {k: v for k, v in asdict(config).items() if k not in RUN_LENGTH_SETTINGS}
    if config.data is not None:
        defining["data"] = data_digest(config.data)
    if models is not None:
        from gan_mnist.models.base import fingerprint

        defining["architecture"] = fingerprint(models)
    if starts_from is not None:
        defining["starts_from"] = starts_from
    digest = hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()[:8]
    seed = "" if config.seed is None else f"-seed{config.seed}"
    name = f"{config.model}-{config.dataset}-f{config.base_filters}-b{config.batch_size}{seed}"
    return Path(root) / f"{name}-{digest}"


def data_digest(path: str | Path) -> str:
    """A short digest of a ``--data`` file's contents (a folder's: each file's name and
    contents, in order; a folder of images: its images', `images.folder_digest`, which
    refuses a folder that is not a data set at once); a path that cannot be read is
    named as it is."""
    from gan_mnist import data, images

    path = Path(path)
    digest = hashlib.sha256()
    try:
        if data.is_image_folder(path):
            return images.folder_digest(images.layout(path), path)
        parts = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for part in parts:
            digest.update(str(part.relative_to(path) if path.is_dir() else "").encode())
            with open(part, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    except OSError:  # training will say what is wrong with it
        return f"unreadable:{path}"
    return digest.hexdigest()[:16]
