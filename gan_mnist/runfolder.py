"""What a folder holds: the one answer that `train`, the CLI, `sample`, `evaluate` and
the app act on.

A run of ours is recognised by a mark that only this package writes: the ``format``
key of its ``config.json`` (`RUN_FORMAT`, written when the run starts). Everything
here reads files only (no TensorFlow), so the CLI can refuse a folder at once.
"""

from __future__ import annotations

import json
from pathlib import Path

from gan_mnist.config import CHECKPOINT_DIR, CONFIG_NAME, DAMAGED_DIR, RUN_FORMAT

LOCK_NAME = ".gan-mnist.lock"

NOTHING = "nothing"  # missing, empty, or only a start of ours (a lock, temporaries)
RUN = "run"  # a run of ours, with or without checkpoints yet
DAMAGED = "damaged run"  # a run of ours whose checkpoints were all set aside as damaged
RUNS = "runs"  # a folder of runs of ours (runs/ itself)
OTHER = "other files"  # someone else's files


def is_our_config(path: Path) -> bool:
    """Whether ``path`` is a config.json this package wrote (it carries the mark)."""
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(values, dict) and values.get("format") == RUN_FORMAT


def has_checkpoint_files(folder: Path) -> bool:
    checkpoints = Path(folder) / CHECKPOINT_DIR
    return (checkpoints / "checkpoint").exists() or any(checkpoints.glob("ckpt-*.index"))


def holds(folder: str | Path) -> str:
    """What ``folder`` holds: `NOTHING`, `RUN`, `DAMAGED`, `RUNS` or `OTHER`."""
    folder = Path(folder)
    if not folder.is_dir():
        return NOTHING
    if (folder / CONFIG_NAME).exists():
        if not is_our_config(folder / CONFIG_NAME):
            return OTHER
        damaged = Path(folder) / CHECKPOINT_DIR / DAMAGED_DIR
        if not has_checkpoint_files(folder) and damaged.is_dir() and any(damaged.iterdir()):
            return DAMAGED
        return RUN
    if has_checkpoint_files(folder):
        return RUN  # its config.json was lost: the checkpoint's own checks decide
    if not _entries(folder):
        return NOTHING
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
