"""A run's checkpoints as files: which are intact, setting the damaged ones aside,
whether a folder's checkpoint may be resumed with given settings, and loading
a run's generator for `sample`, `evaluate`, `interpolate` and the app. Everything here
only reads, except `newest_intact_checkpoint(set_aside=True)`, which the run's one
writer calls."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from gan_mnist.config import TrainConfig, run_config
from gan_mnist.errors import UserError, check_run_dir, first_line
from gan_mnist.files import CHECKPOINT_DIR, CONFIG_NAME, DAMAGED_DIR, GENERATOR_NAME
from gan_mnist.models import FAMILIES, build_models
from gan_mnist.models.base import GanModels
from gan_mnist.runfolder import checkpoint_prefixes

# How TensorFlow 2.21 reports a checkpoint whose files are damaged (seen: a truncated
# or emptied data file, a truncated or garbled index, a checksum mismatch, a file that
# is gone). Anything else that fails a read (permission denied, an I/O error, a folder
# in a file's place) is not damage: it is said, and nothing is moved.
DAMAGE = re.compile(
    r"Read less bytes than requested|too short to be an sstable|not an sstable|"
    r"[Cc]hecksum does not match|[Dd]ata loss|[Cc]orrupt|No such file or directory|"
    r"Failed to find any matching files"
)


def is_intact(path: str) -> bool:
    """Whether every tensor of the checkpoint at ``path`` can be read (False: its files
    are damaged).

    Raises:
        UserError: a read failed for another reason (permissions, the disk).
    """
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # TensorFlow raises several kinds for one cause
        reason = first_line(error, 200)
        if isinstance(error, IndexError) or DAMAGE.search(str(error)):
            return False
        raise UserError(
            f"the checkpoint {path} could not be read ({reason}). That is not damage to "
            "its files, so nothing was moved or changed: check the folder's permissions "
            "and the disk, then run the same command again."
        ) from None
    return True


def newest_intact_checkpoint(run_dir: Path, set_aside: bool = False) -> tuple[str | None, list]:
    """The newest checkpoint whose files are whole, and the newer ones that are not.

    Args:
        set_aside: move the damaged checkpoints' files to ``damaged/`` and rewrite
            the index without them (the run's writer does this; readers only warn).

    Returns:
        (path or None, damaged paths, newest first).
    """
    paths = checkpoint_prefixes(run_dir)
    damaged = []
    good = None
    for path in reversed(paths):
        if is_intact(path):
            good = path
            break
        damaged.append(path)
    if damaged:
        names = ", ".join(Path(p).name for p in damaged)
        aside = Path(run_dir) / CHECKPOINT_DIR / DAMAGED_DIR
        where = f"moved into a new folder of {aside}" if set_aside else "kept"
        fallback = f"using {Path(good).name}" if good else "no intact checkpoint is left"
        print(f"warning: damaged checkpoint files ({names}), {where}; {fallback}.")
    if damaged and set_aside:
        _set_aside(run_dir, damaged, [p for p in paths if p not in damaged])
    return good, damaged


def rebuild_index(run_dir: Path) -> None:
    """Write the ``checkpoint`` index again from the checkpoint files on disk (for an
    index that cannot be read, e.g. one a power loss left empty, or that names other
    checkpoints than the files)."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    paths = checkpoint_prefixes(run_dir)
    if paths:
        print(f"note: {directory / 'checkpoint'} did not list the checkpoint files; rebuilt.")
        tf.compat.v1.train.update_checkpoint_state(
            str(directory), paths[-1], all_model_checkpoint_paths=paths
        )
    else:
        (directory / "checkpoint").unlink(missing_ok=True)


def _set_aside(run_dir: Path, damaged: list[str], remaining: list[str]) -> None:
    """Move the ``damaged`` checkpoints' files into a new numbered folder of
    ``damaged/`` (never onto files set aside before) and index the ``remaining``."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    earlier = [int(p.name) for p in (directory / DAMAGED_DIR).glob("*") if p.name.isdigit()]
    quarantine = directory / DAMAGED_DIR / str(max(earlier, default=0) + 1)
    quarantine.mkdir(parents=True)
    for path in damaged:
        for file in directory.glob(Path(path).name + ".*"):
            shutil.move(str(file), quarantine / file.name)
    if remaining:
        tf.compat.v1.train.update_checkpoint_state(
            str(directory), remaining[-1], all_model_checkpoint_paths=remaining
        )
    else:
        (directory / "checkpoint").unlink(missing_ok=True)


def no_intact_message(run_dir: Path, damaged: list[str], set_aside: bool) -> str:
    where = f"set aside in {DAMAGED_DIR}/" if set_aside else "left where they are"
    return (
        f"no intact checkpoint is left in {Path(run_dir) / CHECKPOINT_DIR}: "
        f"{', '.join(Path(p).name for p in damaged)} cannot be read (damaged files, {where}). "
        f"Train into a new --out folder, or delete {CHECKPOINT_DIR}/ to start this run again."
    )


def check_resumable(config: TrainConfig, out_dir: Path) -> TrainConfig | None:
    """Refuse to resume a checkpoint made with another model, data set or shape, or
    networks built outside the package without them.

    Returns:
        The previous run's config when ``out_dir`` holds a checkpoint, else None.
    """
    if not checkpoint_prefixes(out_dir):
        return None
    previous = run_config(out_dir)
    if previous is None:
        return None
    if previous.architecture is not None and config.architecture is None:
        raise needs_its_networks(out_dir)
    differences = config.fixed_differences(previous)
    if differences:
        raise UserError(
            f"{out_dir} holds a checkpoint of a different run ({'; '.join(differences)}). "
            "Its weights cannot continue with these settings or networks. Train into "
            "another folder for a new run (--out; in the notebook, OUTPUT_DIR = None names "
            "one after the settings), or go back to the run's settings to resume it."
        )
    return previous


def needs_its_networks(out_dir: Path) -> UserError:
    """The refusal to train a run of networks built outside the package without them."""
    return UserError(
        f"{out_dir} trains networks built outside the package (passed to "
        "gan_mnist.training.train with models=...), which the command line cannot build. "
        "Continue it from Python with the same networks, or train a new run into another "
        "folder."
    )


def load_generator(run_dir: Path) -> tuple[GanModels, TrainConfig, str]:
    """The generator of a run: its newest intact checkpoint, or else its ``generator.keras``.

    Only reads: a run may be training in ``run_dir`` meanwhile.

    Returns:
        (models, config, description of what was loaded).
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    config = run_config(run_dir)
    damaged = []
    # Networks built outside the package can only come back from generator.keras.
    if config is not None and config.architecture is None and checkpoint_prefixes(run_dir):
        latest, damaged = newest_intact_checkpoint(run_dir)
        if latest is not None:
            return _from_checkpoint(run_dir, config, latest), config, latest
    saved = run_dir / GENERATOR_NAME
    if saved.exists():
        return (*_from_keras_file(saved, config), str(saved))
    if damaged:
        raise UserError(no_intact_message(run_dir, damaged, set_aside=False))
    if config is not None and config.architecture is not None and checkpoint_prefixes(run_dir):
        raise UserError(
            f"{run_dir} holds checkpoints of networks built outside the package "
            f"(train(models=...)), which only its {GENERATOR_NAME} can bring back, and that "
            "is written when training ends: let the run finish (call train on it again)."
        )
    raise UserError(
        f"{run_dir} holds no checkpoint and no generator.keras. Train first with "
        f"`gan-mnist train --out {run_dir}`, or pass the folder of a finished run."
    )


def _from_checkpoint(run_dir: Path, config: TrainConfig, latest: str) -> GanModels:
    """The family's networks with the generator restored from the checkpoint ``latest``."""
    models = build_models(config)
    # Only the generator is needed (with --ema the averaged one, which draws the run's
    # samples): expect_partial silences the unused rest, and every weight of the
    # generator must come from the checkpoint.
    key = "average_generator" if config.ema else "generator"
    status = tf.train.Checkpoint(**{key: models.generator}).restore(latest)
    try:
        status.assert_existing_objects_matched()
    except AssertionError:
        raise UserError(
            f"{latest} does not hold the {key.replace('_', ' ')} that {run_dir}/"
            f"{CONFIG_NAME} describes (was config.json edited or replaced?). Restore the "
            "run's own config.json, or use its generator.keras."
        ) from None
    status.expect_partial()
    return models


def _from_keras_file(saved: Path, config: TrainConfig | None) -> tuple[GanModels, TrainConfig]:
    """The generator in ``saved`` (generator.keras), and the config: the run's, or for a
    file on its own one that tells the family by the generator's inputs."""
    try:
        generator = keras.models.load_model(saved, compile=False)
    except Exception as error:  # Keras raises many kinds for a damaged archive
        raise UserError(
            f"{saved} cannot be loaded ({str(error).splitlines()[0][:160]}); the file is "
            "damaged. Train again into this folder to rewrite it, or use another run."
        ) from None
    if config is None:
        inputs = [int(i.shape[-1]) for i in generator.inputs]
        config = TrainConfig(
            model="cdcgan" if len(inputs) == 2 else "dcgan",
            noise_dim=inputs[0],
            class_names=tuple(map(str, range(inputs[1]))) if len(inputs) == 2 else None,
        )
    family = FAMILIES[config.model]
    models = GanModels(generator, None, family, config.noise_dim, num_classes=config.num_classes)
    return models, config
