"""The training loop: a run's epochs of the compiled step, resume, and when to stop and
checkpoint.

`train` is the whole run; each function below it holds one idea: the seed, the
training images, one epoch, and the checkpoint policy (every K epochs, every M
minutes, and whenever the run stops early: a time budget, Ctrl-C or SIGTERM). The
compiled call is in `gan_mnist.step`, what a run writes as it goes (progress, the
epoch's records, the end-of-run files) in `gan_mnist.records`.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gan_mnist.checkpoint_files import check_resumable, needs_its_networks
from gan_mnist.checkpoints import write_config
from gan_mnist.config import TrainConfig
from gan_mnist.data import ImageData, load_dataset
from gan_mnist.devices import runtime
from gan_mnist.epochs import run_epochs
from gan_mnist.errors import UserError
from gan_mnist.files import CHECKPOINT_DIR, CONFIG_NAME, HISTORY_NAME
from gan_mnist.guards import (
    StopRequest,
    refuse_foreign_folder,
    remove_stale_temporaries,
    run_lock,
)
from gan_mnist.models import FAMILIES
from gan_mnist.models.base import GanModels, fingerprint
from gan_mnist.quiet import held_back
from gan_mnist.records import (
    progress_mode,
    read_history,
    remove_epoch_images_after,
    write_run_artifacts,
    write_start_artifacts,
)
from gan_mnist.state import TrainingState, image_digest

# Called after each epoch with (epoch, logs); logs has the history row plus "image_path".
EpochCallback = Callable[[int, dict], None]


@dataclass
class RunSummary:
    """What `train` did: the output folder, the epochs it trained and every epoch's row."""

    out_dir: Path
    config: TrainConfig
    first_epoch: int  # the first epoch this call trained (or would have trained)
    last_epoch: int  # the run's last completed epoch when this call ended
    history: list[dict]
    images_trained: int = 0  # real images this call trained on
    stopped_by: str | None = None  # "time" (max_minutes), "SIGINT" or "SIGTERM"
    exit_status: int = 0  # 130 / 143 after SIGINT / SIGTERM, as a shell expects

    @property
    def stopped_by_time(self) -> bool:
        return self.stopped_by == "time"


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    data: ImageData | None = None,
    models: GanModels | None = None,
    quiet: bool = False,
    progress: str | None = None,
    on_epoch_end: EpochCallback | None = None,
    max_minutes: float | None = None,
) -> RunSummary:
    """Train (or resume) a GAN in ``out_dir`` until ``config.epochs``, writing every artifact.

    Ctrl-C (SIGINT) or SIGTERM stop it after the current step with a checkpoint of
    the partial epoch; a second one stops it at once. After SIGINT it then raises
    `Interrupted` (a KeyboardInterrupt), so a notebook's "Run all" stops too.

    Args:
        config: the run's settings (see `gan_mnist.config`).
        out_dir: the run's folder, created if missing; holds checkpoints, images and
            logs. One `train` at a time may write to it (a lock refuses a second). A
            new run refuses a folder that holds other files (it never removes them).
        data: arrays to train on; by default `load_dataset(config.dataset, config.data)`.
        models: networks built outside the package (a `GanModels` of the config's
            family); by default the family's own. Their fingerprint is saved with the
            run, so resuming it with other networks is refused.
        quiet: the same as ``progress="lines"``.
        progress: "bar" (a live progress bar), "lines" (one line per epoch and at most
            one every 30 seconds within an epoch, for log files) or "none" (the epoch
            lines only); by default "bar" in a terminal or a notebook, else "lines".
        on_epoch_end: called after each epoch's artifacts are written.
        max_minutes: stop training after this many minutes, checkpointed mid-epoch;
            for equal-time comparisons and short sessions. Rerunning continues there.

    Returns:
        A `RunSummary`.

    Raises:
        Interrupted: SIGINT arrived; the partial epoch was checkpointed first.
        UserError: bad settings or data, or another process writing to ``out_dir``.
        TrainingDiverged: a loss became NaN/Inf; the last good checkpoint is kept.
    """
    # TensorFlow's harmless lines held back, also where Jupyter shows file descriptor 2.
    with held_back(start_up=False):
        return _train(config, out_dir, data, models, quiet, progress, on_epoch_end, max_minutes)


def _train(config, out_dir, data, models, quiet, progress, on_epoch_end, max_minutes):
    """`train`, its arguments as given."""
    if models is not None:
        config = replace(config, architecture=fingerprint(models))
    elif config.architecture is not None:  # a run of networks built outside the package
        raise needs_its_networks(Path(out_dir))
    place = runtime(config)  # first: the strategy must exist before other TF work
    if models is not None:
        place = in_their_precision(place, models)
    print(place.describe())
    # The data first: a folder or file that cannot be used leaves no run folder behind.
    data = data or load_dataset(config.dataset, config.data)
    config = with_classes(config, data)
    # A multi-worker run's other workers only read the run's folder (the chief's).
    out_dir = prepare_out_dir(out_dir) if place.is_chief else Path(out_dir)
    args = (data, models, progress_mode(quiet, progress), on_epoch_end, max_minutes, place)
    try:
        if not place.is_chief:
            return _train_in_scratch(config, out_dir, args)
        refuse_foreign_folder(out_dir)  # before the lock file is made there
        with run_lock(out_dir):
            remove_stale_temporaries(out_dir)  # left by a writer that was killed
            return _train_locked(config, out_dir, *args)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
        if place.name != "multiworker":
            raise
        raise UserError(
            "another worker of this multi-worker run stopped answering "
            f"({type(error).__name__}), so this one stopped too; the checkpoints in "
            f"{out_dir / CHECKPOINT_DIR} are intact. Start every worker again with the "
            "same command to resume from the last one."
        ) from None


def _train_in_scratch(config, out_dir, args):
    """A multi-worker run's other workers train in step with the chief but write into
    a scratch folder, removed at the end; they resume from the chief's checkpoints."""
    scratch = Path(tempfile.mkdtemp(prefix="gan-mnist-worker-"))
    try:
        return _train_locked(config, scratch, *args, restore_dir=out_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _train_locked(
    config, out_dir, data, models, progress, on_epoch_end, max_minutes, place, restore_dir=None
):
    """`train` once it holds the folder's lock (or, a non-chief worker, its scratch)."""
    previous = check_resumable(config, restore_dir or out_dir)
    if place.name == "multiworker" and config.seed is None and previous is None:
        raise UserError(
            "--strategy multiworker needs --seed S, the same on every worker, so that "
            "all of them draw the same data order."
        )
    config = with_seed(config, previous)
    images, labels = training_images(config, data)
    if config.batch_size % place.replicas:
        raise UserError(
            f"--batch-size {config.batch_size} is the global batch and must split evenly "
            f"over the {place.replicas} replicas: use a multiple of {place.replicas}."
        )

    state, done, skip = restored_state(config, out_dir, models, place, restore_dir, images)
    if place.is_chief and (previous is None or not (out_dir / CONFIG_NAME).exists()):
        # A new run's mark and settings, or a lost config.json written again from the
        # checkpoint's. A resumed run's changed settings reach config.json with its next
        # checkpoint (`TrainingState.save`), never before.
        write_config(config, out_dir)
    history = read_history(out_dir / HISTORY_NAME, up_to_epoch=done)
    summary = RunSummary(out_dir, config, done + 1, done, history)
    if done >= config.epochs:
        print(
            f"already trained to epoch {done} (>= --epochs {config.epochs}); nothing to do. "
            "Pass a larger --epochs to train further."
        )
        write_run_artifacts(state, out_dir, history, only_missing=True)  # or out of date
        return summary

    if place.is_chief:  # the others train in step and write only their checkpoints
        if done == 0 and skip == 0:
            write_start_artifacts(state, images, out_dir)
        remove_epoch_images_after(out_dir, done)  # left by a run killed before its checkpoint

    with StopRequest() as stop:
        run_epochs(state, summary, images, labels, data, stop, progress, on_epoch_end, max_minutes)
    write_run_artifacts(state, out_dir, history)
    return how_it_ended(summary, state, stop, max_minutes)


def restored_state(config, out_dir, models, place, restore_dir, images):
    """The run's `TrainingState`, restored from its newest intact checkpoint if it has
    one: (the state, completed epochs, steps done in the next epoch)."""
    state = TrainingState(config, out_dir, models, runtime=place, restore_dir=restore_dir)
    state.data_digest = image_digest(images)
    done, skip = state.restore()
    skip = restart_if_units_moved(state, done, skip, len(images) // config.batch_size)
    state.spread_dropout_seeds()
    if done or skip:
        where = f"epoch {done}" + (f" and {skip} steps of epoch {done + 1}" if skip else "")
        print(f"resuming from the checkpoint of {where} in {out_dir / CHECKPOINT_DIR}")
    return state, done, skip


def how_it_ended(summary: RunSummary, state: TrainingState, stop, max_minutes) -> RunSummary:
    """The summary of a call whose epochs have run, and what it says: finished,
    stopped (by the clock or a signal), or interrupted (raised, after SIGINT)."""
    if summary.stopped_by and summary.last_epoch >= state.config.epochs:
        # The stop came while the last epoch was being recorded: the run is finished.
        why = "the time budget ran out" if summary.stopped_by == "time" else "the stop came"
        print(f"the run is finished (epoch {summary.last_epoch}); {why} after its last epoch.")
        summary.stopped_by = None
    if summary.stopped_by:
        summary.exit_status = stop.exit_status if stop.requested else 0
        print(stopped_message(summary, state, max_minutes))
    if summary.stopped_by == "SIGINT":
        # Ctrl-C or a notebook's stop button: saved, and now stop the caller too (a
        # notebook's "Run all" must not go on to the next cell's training).
        raise Interrupted(summary)
    return summary


def in_their_precision(place, models: GanModels):
    """The runtime for networks built outside the package: they compute in the dtype
    policy they were built under (float32 unless the caller set one), whatever
    --mixed-precision chose, so the device line says that."""
    policy = models.generator.dtype_policy.name
    built = policy if policy.startswith("mixed_") else None
    if built != place.mixed_precision:
        print(
            f"note: the networks passed with models= were built in {policy} and compute "
            f"in it (--mixed-precision {place.mixed_precision or 'off'} applies only to "
            "networks the package builds)."
        )
    return replace(place, mixed_precision=built)


def restart_if_units_moved(state: TrainingState, done: int, skip: int, steps: int):
    """The batch to resume at: ``skip``, or 0 when the saved position cannot be reached
    in this run's batches: --batch-size, --limit or the training images (--data)
    differ from those the checkpoint counted in (saved inside it), or the epoch now has
    ``steps`` or fewer batches. That epoch's partial sums are then forgotten, and it
    starts again. Other training images than the run's so far are said in any case."""
    saved, digest = state.saved_settings.read()
    images_changed = digest is not None and digest != state.data_digest
    if images_changed:
        print(
            "note: the training images differ from those this run has trained on so far "
            "(--data, --limit or the data file changed); it goes on with the new ones."
        )
    if not skip:
        return skip
    config = state.config
    moved = saved is not None and (saved.batch_size, saved.limit) != (
        config.batch_size,
        config.limit,
    )
    if not (moved or images_changed or skip >= steps):
        return skip
    print(
        f"--batch-size, --limit or the training images changed in the middle of epoch "
        f"{done + 1}: that epoch starts again from its first batch."
    )
    state.forget_partial_epoch()
    return 0


class Interrupted(KeyboardInterrupt):
    """`train` was interrupted (SIGINT) and has checkpointed; ``summary`` says where."""

    def __init__(self, summary: RunSummary):
        super().__init__("interrupted; the run was checkpointed")
        self.summary = summary


def stopped_message(summary: RunSummary, state: TrainingState, max_minutes) -> str:
    """What to tell a user whose run stopped before ``config.epochs``."""
    why = {
        "time": f"stopped after {max_minutes or 0:g} minutes (--max-minutes)",
        "SIGINT": "interrupted (Ctrl-C)",
        "SIGTERM": "stopped by SIGTERM",
        "worker": "stopped together with another worker of this multi-worker run",
    }[summary.stopped_by]
    where = f"epoch {int(state.epoch.numpy())}"
    partial = int(state.step_in_epoch.numpy())
    if partial:
        where += f" and {partial} steps of the next"
    return f"{why}: checkpointed at {where}. Run the same command again to continue."


def with_seed(config: TrainConfig, previous: TrainConfig | None) -> TrainConfig:
    """Fix the run's seed (the resumed run's, else a new one), print it and apply it."""
    if config.seed is None:
        config = replace(config, seed=previous.seed if previous else secrets.randbelow(2**31))
    print(f"seed: {config.seed}")
    keras.utils.set_random_seed(config.seed)  # weights' init and dropout masks
    return config


def with_classes(config: TrainConfig, data: ImageData) -> TrainConfig:
    """The config with a folder's classes (saved with the run, so that sampling and the
    app name them after the folder has moved or gone).

    Raises:
        UserError: a conditional family asked of a folder with one class.
    """
    if data.names is None:
        return config
    if FAMILIES[config.model].conditional and len(data.names) < 2:
        raise UserError(
            f"--model {config.model} draws the class you ask for, but {data.source} has one "
            f"class ({data.names[0]}). Put its images in one subfolder per class, or train an "
            "unconditional family (the preset's own, or --model dcgan)."
        )
    return replace(config, class_names=tuple(data.names))


def training_images(config: TrainConfig, data: ImageData) -> tuple[np.ndarray, np.ndarray]:
    """The (images, labels) a run trains on: the first ``config.limit`` of the data set."""
    images, labels = data.x_train, data.y_train
    if config.limit is not None:
        images, labels = images[: config.limit], labels[: config.limit]
    if config.batch_size > len(images):
        raise UserError(
            f"--batch-size {config.batch_size} is larger than the {len(images)} training "
            "images: lower --batch-size or raise --limit."
        )
    print(f"data: {len(images)} training images from {data.source}{data.details}")
    return images, labels


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` if needed and check that files can be written there."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as error:
        raise UserError(
            f"cannot write to the output folder {out_dir} ({error.strerror or error}). "
            "Pass a folder you can write to with --out."
        ) from None
    return out_dir
