"""What a folder holds: the one answer that `train`, the CLI, `sample`, `evaluate` and
the app act on; and the folder a new run gets, named from its settings.

A run of ours is recognised by a mark that only this package writes: the ``format``
key of its ``config.json`` (`RUN_FORMAT`, written when the run starts). Everything
here reads files only (no TensorFlow), so the CLI can refuse a folder at once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

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
RUNS = "runs"  # a folder of runs of ours (runs/ itself)
OTHER = "other files"  # someone else's files


# Settings every config.json of a run has had, also before the format mark.
UNMARKED_KEYS = {"model", "noise_dim", "batch_size", "gen_lr", "disc_lr", "epochs"}
EARLIER_RUN = (
    "its settings look like a run of an earlier gan-mnist, from before runs carried the "
    '"format" mark, which this version cannot continue'
)


def is_earlier_run(values) -> bool:
    """Whether config.json's ``values`` are a run's settings written by an earlier
    version of this package (those versions wrote no format mark)."""
    return isinstance(values, dict) and "format" not in values and UNMARKED_KEYS <= set(values)


def is_unmarked_run(path: Path) -> bool:
    """Whether ``path`` is a config.json of a run of an earlier version (`is_earlier_run`)."""
    try:
        return is_earlier_run(json.loads(Path(path).read_text()))
    except (OSError, ValueError):
        return False


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


# Settings that say how long or where a run trains, not which run it is.
RUN_LENGTH_SETTINGS = {
    "epochs", "checkpoint_every", "checkpoint_minutes", "save_generator_every", "eval_every",
    "eval_samples", "strategy", "jit_compile", "mixed_precision", "steps_per_call", "data",
}  # fmt: skip


def run_folder(
    config, root: str | Path = RUNS_DIR, models=None, starts_from: str | None = None
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
