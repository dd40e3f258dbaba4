"""The training loop: epochs of the train step, checkpoints, resume, per-epoch artifacts.

`train` is the whole run; each function below it holds one idea: the seed, the
training images, compiling the step, one epoch, what is written after an epoch,
and the checkpoint policy (every K epochs, every M minutes, and whenever the run
stops early: a time budget, Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import csv
import io
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gan_mnist import artifacts
from gan_mnist.checkpoints import TrainingState, adam_of, check_resumable
from gan_mnist.config import CHECKPOINT_DIR, CONFIG_NAME, PROGRESS_MODES, TrainConfig
from gan_mnist.data import ImageData, load_dataset, make_dataset
from gan_mnist.devices import distribute, runtime
from gan_mnist.errors import UserError
from gan_mnist.guards import (
    StopRequest,
    TrainingDiverged,
    fault_point,
    refuse_foreign_folder,
    remove_stale_temporaries,
    run_lock,
)
from gan_mnist.losses import LOSSES
from gan_mnist.models.base import GanModels, fingerprint
from gan_mnist.step import make_train_step

HISTORY_COLUMNS = ["epoch", "d_loss", "g_loss", "seconds", "images_per_sec"]
HISTORY_NAME = "history.csv"
PROGRESS_SECONDS = 0.25  # how often the loop reads the losses back from the device

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
    out_dir = prepare_out_dir(out_dir)
    if models is not None:
        config = replace(config, architecture=fingerprint(models))
    place = runtime(config)  # first: the strategy must exist before other TF work
    print(place.describe())
    args = (data, models, progress_mode(quiet, progress), on_epoch_end, max_minutes, place)
    try:
        if not place.is_chief:
            # A multi-worker run's other workers train in step with the chief but
            # write into a scratch folder, removed at the end; they resume from the
            # chief's checkpoints.
            scratch = Path(tempfile.mkdtemp(prefix="gan-mnist-worker-"))
            try:
                return _train_locked(config, scratch, *args, restore_dir=out_dir)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
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
    data = data or load_dataset(config.dataset, config.data)
    images, labels = training_images(config, data)
    if config.batch_size % place.replicas:
        raise UserError(
            f"--batch-size {config.batch_size} is the global batch and must split evenly "
            f"over the {place.replicas} replicas: use a multiple of {place.replicas}."
        )

    state = TrainingState(config, out_dir, models, runtime=place, restore_dir=restore_dir)
    done, skip = state.restore()
    skip = restart_if_batches_moved(state, previous, done, skip)
    if done or skip:
        where = f"epoch {done}" + (f" and {skip} steps of epoch {done + 1}" if skip else "")
        print(f"resuming from the checkpoint of {where} in {out_dir / CHECKPOINT_DIR}")
    history = read_history(out_dir / HISTORY_NAME, up_to_epoch=done)
    summary = RunSummary(out_dir, config, done + 1, done, history)
    if done >= config.epochs:
        print(
            f"already trained to epoch {done} (>= --epochs {config.epochs}); nothing to do. "
            "Pass a larger --epochs to train further."
        )
        write_run_artifacts(state, out_dir, history, only_missing=True)  # or out of date
        return summary

    with artifacts.atomic_path(out_dir / CONFIG_NAME) as tmp:
        tmp.write_text(config.to_json())
    if done == 0 and skip == 0:
        write_start_artifacts(state, images, out_dir)
    _remove_epoch_images_after(out_dir, done)  # left by a run killed before its checkpoint

    with StopRequest() as stop:
        run_epochs(state, summary, images, labels, data, stop, progress, on_epoch_end, max_minutes)
    write_run_artifacts(state, out_dir, history)
    if summary.stopped_by:
        summary.exit_status = stop.exit_status if stop.requested else 0
        print(stopped_message(summary, state, max_minutes))
    if summary.stopped_by == "SIGINT":
        # Ctrl-C or a notebook's stop button: saved, and now stop the caller too (a
        # notebook's "Run all" must not go on to the next cell's training).
        raise Interrupted(summary)
    return summary


def restart_if_batches_moved(state: TrainingState, previous, done: int, skip: int) -> int:
    """The batch to resume at: ``skip``, or 0 when --batch-size or --limit changed in
    the middle of an epoch (the saved position counts batches of the old size in the
    old image set), with that epoch's partial sums forgotten."""
    config = state.config
    moved = previous is not None and (previous.batch_size, previous.limit) != (
        config.batch_size,
        config.limit,
    )
    if not (skip and moved):
        return skip
    print(
        f"--batch-size or --limit changed in the middle of epoch {done + 1}: that epoch "
        "starts again from its first batch."
    )
    state.forget_partial_epoch()
    return 0


class Interrupted(KeyboardInterrupt):
    """`train` was interrupted (SIGINT) and has checkpointed; ``summary`` says where."""

    def __init__(self, summary: RunSummary):
        super().__init__("interrupted; the run was checkpointed")
        self.summary = summary


def run_epochs(state, summary, images, labels, data, stop, progress, on_epoch_end, max_minutes):
    """Train epoch after epoch until ``config.epochs``, a stop request or the time
    budget, recording each epoch and checkpointing as the clock says."""
    config, out_dir, history = state.config, summary.out_dir, summary.history
    done, skip = summary.last_epoch, int(state.step_in_epoch.numpy())
    run_step = compile_step(state)
    recorder = EpochRecorder(state, out_dir, history, data)
    # Every worker of a multi-worker run must save at the same steps: by epochs only.
    minutes = 0 if state.runtime.name == "multiworker" else config.checkpoint_minutes
    clock = CheckpointClock(minutes, max_minutes)
    steps = len(images) // config.batch_size
    for epoch in range(done + 1, config.epochs + 1):
        if progress == "bar":
            print(f"Epoch {epoch}/{config.epochs}")
        dataset = make_dataset(
            images,
            labels,
            config.batch_size,
            seed=config.seed,
            pixel_range=state.models.pixel_range,
            epoch=epoch,
            skip_batches=skip,
        )
        dataset = distribute(state.runtime, dataset)  # per-replica slices of each batch
        row = run_epoch(run_step, state, dataset, epoch, steps, skip, progress, stop, clock)
        summary.images_trained += row.pop("steps_run") * config.batch_size
        skip = 0
        if row["steps"] < steps:  # stopped mid-epoch: keep the partial epoch
            summary.stopped_by = clock.reason(stop)
            state.save()
            break
        row, image_path = recorder.record(epoch, row)
        fault_point("after-epoch-image")  # the image is written, the checkpoint not yet
        clock.checkpoint_epoch(state, epoch, last=epoch == config.epochs or clock.due(stop))
        recorder.snapshot(epoch)
        print(epoch_line(row, config.epochs, image_path.relative_to(out_dir)))
        summary.last_epoch = epoch
        if on_epoch_end is not None:
            on_epoch_end(epoch, {**row, "image_path": image_path})
        if clock.due(stop):
            summary.stopped_by = clock.reason(stop)
            break


def stopped_message(summary: RunSummary, state: TrainingState, max_minutes) -> str:
    """What to tell a user whose run stopped before ``config.epochs``."""
    why = {
        "time": f"stopped after {max_minutes or 0:g} minutes (--max-minutes)",
        "SIGINT": "interrupted (Ctrl-C)",
        "SIGTERM": "stopped by SIGTERM",
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
    print(f"data: {len(images)} training images from {data.source}")
    return images, labels


def compile_step(state: TrainingState):
    """The run's train step, compiled into a TensorFlow graph, with its bookkeeping.

    Each call runs ``n`` steps from a (distributed) batch iterator: each step runs
    per replica under the strategy (`strategy.run`), its losses are summed over the
    replicas (each is already divided by the global batch), added to the epoch's
    sums and checked for NaN, all on the device, and the averaged generator (--ema)
    moves toward the trained one. The loop reads the sums a few times a second
    instead of waiting for every step.
    """
    config, runtime = state.config, state.runtime
    strategy = runtime.strategy
    step = make_train_step(
        state.models,
        LOSSES[config.loss],
        state.generator_optimizer,
        state.discriminator_optimizer,
        state.rng,
        global_batch_size=config.batch_size,
    )
    if runtime.jit_compile:
        step = tf.function(step, jit_compile=True)  # XLA: the step's ops fused per replica
    update_average = average_update(state)

    def one_step(iterator):
        images, labels = next(iterator)
        losses = strategy.run(step, args=(images, labels))
        d_loss = strategy.reduce("SUM", losses["d_loss"], axis=None)
        g_loss = strategy.reduce("SUM", losses["g_loss"], axis=None)
        state.step_in_epoch.assign_add(1)
        state.loss_sums.assign_add(tf.stack([d_loss, g_loss]))
        finite = tf.math.is_finite(d_loss) & tf.math.is_finite(g_loss)
        first_bad = tf.logical_and(tf.logical_not(finite), state.nonfinite_at < 0)
        state.nonfinite_at.assign(tf.where(first_bad, state.step_in_epoch, state.nonfinite_at))
        if update_average is not None:
            update_average()

    single = tf.function(one_step)

    @tf.function
    def several(iterator, n):
        for _ in tf.range(n):  # one graph for any n: no retracing at an epoch's end
            one_step(iterator)

    def run_steps(iterator, n):
        # One step without a loop: Grappler fuses conv + bias + activation only outside
        # while loops, so on a CPU (1 step per call) the step is not slowed by one.
        return single(iterator) if int(n) == 1 else several(iterator, n)

    return run_steps


def average_update(state: TrainingState):
    """The --ema update, or None: average <- d * average + (1 - d) * generator, for
    every weight (BatchNorm's moving statistics too), with d = min(ema, (1 + t) /
    (10 + t)) at step t, so the average forgets its random start quickly."""
    if state.average_generator is None:
        return None
    pairs = [
        (average, trained)
        for average, trained in zip(
            state.average_generator.weights, state.models.generator.weights, strict=True
        )
        if "float" in str(average.dtype)
    ]
    iterations = adam_of(state.generator_optimizer).iterations

    def update():
        t = tf.cast(iterations, tf.float32)
        decay = tf.minimum(state.config.ema, (1.0 + t) / (10.0 + t))
        for average, trained in pairs:
            average.assign(decay * average + (1.0 - decay) * trained)

    return update


def run_epoch(
    run_step,
    state: TrainingState,
    dataset,
    epoch: int,
    steps: int,
    skip: int,
    progress: str,
    stop: StopRequest,
    clock: CheckpointClock,
) -> dict:
    """One pass over the epoch's batches (from batch ``skip`` on, when resuming).

    Stops early, after a whole step, when ``stop`` or the time budget says so, and
    checkpoints mid-epoch when the checkpoint clock is due.

    Returns:
        The epoch's mean losses, its training seconds, images/s, the steps done in
        the epoch so far and the steps this call ran.

    Raises:
        TrainingDiverged: a loss became NaN or infinite (nothing is saved).
    """
    batch_size, per_call = state.config.batch_size, state.runtime.steps_per_call
    shown = EpochProgress(state, epoch, steps, skip, progress)
    started = time.perf_counter()
    ran = 0
    batches = iter(dataset)
    while skip + ran < steps:
        n = min(per_call, steps - skip - ran)
        run_step(batches, n)
        ran += n
        fault_point("step")
        shown.update(ran)
        if clock.due(stop):
            break
        if clock.mid_epoch_due() and skip + ran < steps:
            check_finite(state, epoch)
            state.save()
            clock.saved()
    seconds = time.perf_counter() - started
    means = check_finite(state, epoch)
    done = int(state.step_in_epoch.numpy())
    if done == steps:  # a whole epoch: the sums start again for the next one
        state.forget_partial_epoch()
        state.epoch.assign(epoch)
    return {
        **means,
        "seconds": seconds,
        "images_per_sec": ran * batch_size / max(seconds, 1e-9),
        "steps": done,
        "steps_run": ran,
    }


LINE_SECONDS = 30  # "lines": at most one progress line this often within an epoch


def progress_mode(quiet: bool = False, progress: str | None = None) -> str:
    """``progress``, else "lines" when ``quiet``, else "bar" where someone watches
    (a terminal, a Jupyter or Colab kernel) and "lines" in a log file or a pipe."""
    if progress is not None:
        if progress not in PROGRESS_MODES:
            raise UserError(
                f"progress must be one of {', '.join(PROGRESS_MODES)}, not {progress!r}."
            )
        return progress
    if quiet:
        return "lines"
    return "bar" if _watched(sys.stdout) else "lines"


def _watched(stream) -> bool:
    if "ipykernel" in sys.modules:  # a notebook keeps its live bar
        try:
            from IPython import get_ipython

            if get_ipython() is not None and "ZMQ" in type(get_ipython()).__name__:
                return True
        except ImportError:
            pass
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class EpochProgress:
    """The epoch's progress, fed a few times a second (each read of the losses waits
    for the device, so it is also when the NaN check runs): a live bar, a line every
    `LINE_SECONDS`, or nothing."""

    def __init__(self, state: TrainingState, epoch: int, steps: int, skip: int, mode: str):
        self.state, self.epoch, self.steps, self.skip, self.mode = state, epoch, steps, skip, mode
        # All metrics "stateful": the bar shows exactly the running means computed here.
        self.bar = (
            keras.utils.Progbar(steps, stateful_metrics=["d_loss", "g_loss", "img/s"])
            if mode == "bar"
            else None
        )
        self.started = self.last_read = self.last_line = time.perf_counter()

    def update(self, ran: int) -> None:
        """After the ``ran``-th step of this call."""
        now = time.perf_counter()
        if now - self.last_read < PROGRESS_SECONDS and self.skip + ran < self.steps:
            return
        self.last_read = now
        means = check_finite(self.state, self.epoch)
        speed = ran * self.state.config.batch_size / (now - self.started)
        if self.bar is not None:
            self.bar.update(self.skip + ran, [*means.items(), ("img/s", speed)])
        elif self.mode == "lines" and now - self.last_line >= LINE_SECONDS:
            if self.skip + ran < self.steps:  # the epoch's own line follows at its end
                print(
                    f"  epoch {self.epoch}: step {self.skip + ran}/{self.steps}  d_loss "
                    f"{means['d_loss']:.4f}  g_loss {means['g_loss']:.4f}  {speed:.0f} img/s",
                    flush=True,
                )
            self.last_line = now


def check_finite(state: TrainingState, epoch: int) -> dict:
    """The epoch's mean losses so far; raise if one step's loss was NaN or infinite."""
    bad_step = int(state.nonfinite_at.numpy())
    if bad_step >= 0:
        config = state.config
        kept = (
            f"the last good checkpoint ({Path(state.manager.latest_checkpoint).name}) and the "
            "files of the epochs before it are intact"
            if state.manager.latest_checkpoint
            else "no checkpoint had been written yet"
        )
        raise TrainingDiverged(
            f"training diverged at epoch {epoch}, step {bad_step}: a loss became NaN or "
            f"infinite. Nothing since the last checkpoint was saved; {kept}. "
            + TrainingDiverged.advice(config)
        )
    count = max(int(state.step_in_epoch.numpy()), 1)
    d_sum, g_sum = state.loss_sums.numpy()
    return {"d_loss": float(d_sum / count), "g_loss": float(g_sum / count)}


class CheckpointClock:
    """When to checkpoint and when to stop: every ``checkpoint_every`` epochs, after
    ``checkpoint_minutes`` of training since the last checkpoint (mid-epoch if need
    be), and at the end of a ``max_minutes`` budget or on a stop request."""

    def __init__(self, checkpoint_minutes: float, max_minutes: float | None):
        self.interval = 60 * checkpoint_minutes if checkpoint_minutes else None
        now = time.perf_counter()
        self.last_save = now
        self.deadline = None if max_minutes is None else now + 60 * max_minutes

    def mid_epoch_due(self) -> bool:
        return self.interval is not None and time.perf_counter() - self.last_save >= self.interval

    def saved(self) -> None:
        self.last_save = time.perf_counter()

    def due(self, stop: StopRequest) -> bool:
        """Whether the run must stop now (a signal, or the time budget is spent)."""
        return stop.requested or (
            self.deadline is not None and time.perf_counter() >= self.deadline
        )

    def reason(self, stop: StopRequest) -> str:
        return stop.name or "time"

    def checkpoint_epoch(self, state: TrainingState, epoch: int, last: bool) -> None:
        """At the end of an epoch: save when the epoch, the clock or the end says so."""
        if last or epoch % state.config.checkpoint_every == 0 or self.mid_epoch_due():
            state.save()
            self.saved()


class EpochRecorder:
    """What happens after each epoch: preview image, evaluation, history, TensorBoard
    and generator snapshots."""

    def __init__(self, state: TrainingState, out_dir: Path, history: list[dict], data):
        self.state, self.out_dir, self.history = state, out_dir, history
        self.config = state.config
        self.writer = tf.summary.create_file_writer(str(out_dir / "logs"))
        self.evaluation = None
        if self.config.eval_every:
            from gan_mnist.evaluator import TrainingEvaluation

            self.evaluation = TrainingEvaluation(
                data, self.config.eval_samples, self.config.seed, history
            )

    def record(self, epoch: int, row: dict) -> tuple[dict, Path]:
        """Write the epoch's preview grid and its row (with metrics when due)."""
        row = {"epoch": epoch, **{k: v for k, v in row.items() if k != "steps"}}
        image_path = artifacts.epoch_image_path(self.out_dir, epoch)
        grid = preview_grid(self.state)
        artifacts.save_png(grid, image_path)
        if self.evaluation is not None and epoch % self.config.eval_every == 0:
            scores, improved = self.evaluation(self.state.sampling_models)
            row.update(scores)
            if improved:  # late GAN epochs often get worse: keep the best one
                save_keras(
                    self.state.sampling_models.generator, self.out_dir / "generator_best.keras"
                )
        self.history.append(row)
        write_history(self.history, self.out_dir / HISTORY_NAME)
        self.log_tensorboard(epoch, row, grid)
        return row, image_path

    def log_tensorboard(self, epoch: int, row: dict, grid: np.ndarray) -> None:
        with self.writer.as_default(step=epoch):
            for key, value in row.items():
                if key not in ("epoch", "seconds"):
                    tf.summary.scalar(key, value)
            tf.summary.image("generated_images", grid[np.newaxis, ..., np.newaxis])
        self.writer.flush()

    def snapshot(self, epoch: int) -> None:
        """Save generators/generator_epoch_XXXX.keras every ``save_generator_every``."""
        every = self.config.save_generator_every
        if every and epoch % every == 0:
            save_keras(
                self.state.sampling_models.generator,
                self.out_dir / "generators" / f"generator_epoch_{epoch:04d}.keras",
            )


def epoch_line(row: dict, epochs: int, image: Path) -> str:
    """The one-line summary of an epoch."""
    line = (
        f"epoch {row['epoch']}/{epochs}: d_loss {row['d_loss']:.4f}  "
        f"g_loss {row['g_loss']:.4f}  {row['seconds']:.1f}s  "
        f"{row['images_per_sec']:.0f} img/s"
    )
    if "frechet_distance" in row:
        line += (
            f"  FD {row['frechet_distance']:.2f}  score {row['classifier_score']:.2f}  "
            f"classes {row['digits_covered']}"
        )
    return f"{line}  -> {image}"


def preview_images(state: TrainingState) -> np.ndarray:
    """The generator's images for the fixed noise, uint8 (N, 28, 28): num_examples
    images, or 10 rows of num_examples for conditional families."""
    models = state.sampling_models
    noise, labels = models.preview_latents(state.fixed_noise)
    # training=False: BatchNorm uses its moving averages, as at inference time.
    return models.to_uint8(models.generate(noise, labels, training=False))


def preview_grid(state: TrainingState) -> np.ndarray:
    """The epoch's preview picture: `preview_images` in the family's layout."""
    columns = state.models.preview_columns(state.config.num_examples)
    return artifacts.image_grid(preview_images(state), columns)


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


def write_start_artifacts(state: TrainingState, images: np.ndarray, out_dir: Path) -> None:
    """Files that describe the run before it trains: real images and model diagrams."""
    artifacts.save_grid(images[:25], out_dir / "real_data.png")
    artifacts.plot_model_diagrams(
        {
            "Generator_Model": state.models.generator,
            "Discriminator_Model": state.models.discriminator,
        },
        out_dir,
    )


def write_run_artifacts(
    state: TrainingState, out_dir: Path, history: list[dict], only_missing: bool = False
) -> None:
    """The end-of-run files: final generator, GIF, montage, ZIP and loss plot."""
    wanted = [
        "generator.keras",
        artifacts.GIF_NAME,
        artifacts.MONTAGE_NAME,
        artifacts.ZIP_NAME,
        "losses.png",
    ]
    if only_missing and not stale(out_dir, wanted):
        return
    save_keras(state.sampling_models.generator, out_dir / "generator.keras")
    artifacts.write_epoch_summaries(out_dir)
    if history:
        artifacts.plot_losses(history, out_dir / "losses.png")
    if not state.runtime.is_chief:
        print(
            "this worker's copies of the run's files were scratch (removed); the chief writes them"
        )
        return
    print(
        f"outputs in {out_dir.resolve()}: {artifacts.IMAGES_DIR}/, {artifacts.GIF_NAME}, "
        f"{artifacts.MONTAGE_NAME}, {artifacts.ZIP_NAME}, losses.png, generator.keras, "
        f"{CHECKPOINT_DIR}/"
    )


def stale(out_dir: Path, names: list[str]) -> list[str]:
    """The files among ``names`` that are missing or older than the newest checkpoint
    (a run killed between its last checkpoint and its end-of-run files)."""
    saved = [p.stat().st_mtime for p in (out_dir / CHECKPOINT_DIR).glob("ckpt-*")]
    newest = max(saved, default=0.0)
    return [
        name
        for name in names
        if not (out_dir / name).exists() or (out_dir / name).stat().st_mtime < newest
    ]


def save_keras(model: keras.Model, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with artifacts.atomic_path(path) as tmp:
        model.save(tmp)
    return path


def read_history(path: Path, up_to_epoch: int) -> list[dict]:
    """The rows of ``history.csv`` up to the resumed epoch (later rows were not kept)."""
    if not path.exists() or up_to_epoch == 0:
        return []
    with open(path, newline="") as f:
        rows = [dict(r) for r in csv.DictReader(f)]
    return [r for r in rows if int(r["epoch"]) <= up_to_epoch]


def write_history(rows: list[dict], path: Path) -> None:
    """history.csv: the base columns, then any metric columns some row has."""
    extra = [k for k in dict.fromkeys(k for row in rows for k in row) if k not in HISTORY_COLUMNS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS + extra, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(v) for k, v in row.items() if v != ""})
    with artifacts.atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())


def _csv_value(value):
    return f"{value:.6g}" if isinstance(value, float) else value


def _remove_epoch_images_after(out_dir: Path, epoch: int) -> None:
    for number, path in artifacts.epoch_images(out_dir):
        if number > epoch:
            path.unlink()
