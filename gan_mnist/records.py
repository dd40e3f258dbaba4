"""What a run writes as it goes: its progress on screen, each epoch's preview grid,
history row, TensorBoard log and evaluation, and the files at its start and end
(real images and diagrams; final generator, GIF, montage, ZIP, loss plot).

Only the chief of a multi-worker run writes any of them.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gan_mnist import artifacts, files, metrics
from gan_mnist.checkpoints import check_finite
from gan_mnist.config import PROGRESS_MODES
from gan_mnist.errors import UserError
from gan_mnist.files import (
    CHECKPOINT_DIR,
    GENERATOR_NAME,
    HISTORY_NAME,
    LOSSES_NAME,
)
from gan_mnist.runfolder import checkpoint_prefixes
from gan_mnist.state import TrainingState

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


class EpochRecorder:
    """What happens after each epoch: preview image, evaluation, history, TensorBoard
    and generator snapshots."""

    def __init__(self, state: TrainingState, out_dir: Path, history: list[dict], data):
        self.state, self.out_dir, self.history = state, out_dir, history
        self.config = state.config
        # Only the chief of a multi-worker run records (the others' files were scratch).
        self.writes = state.runtime.is_chief
        self.writer = (
            tf.summary.create_file_writer(str(out_dir / files.LOGS_DIR)) if self.writes else None
        )
        self.evaluation = None
        # Left by an earlier train() of this process that raised: not this run's best.
        files.pending_best(out_dir).unlink(missing_ok=True)
        if self.config.eval_every and self.writes:
            from gan_mnist.evaluator import TrainingEvaluation

            self.evaluation = TrainingEvaluation(
                data, self.config.eval_samples, self.config.seed, history
            )

    def record(self, epoch: int, row: dict) -> tuple[dict, Path]:
        """Write the epoch's preview grid and its row (with metrics when due)."""
        row = {"epoch": epoch, **{k: v for k, v in row.items() if k != "steps"}}
        image_path = artifacts.epoch_image_path(self.out_dir, epoch)
        self.history.append(row)
        if not self.writes:
            return row, image_path
        grid = preview_grid(self.state)
        artifacts.save_png(grid, image_path)
        if self.evaluation is not None and epoch % self.config.eval_every == 0:
            scores, improved = self.evaluation(self.state.sampling_models)
            row.update(scores)
            if improved:  # late GAN epochs often get worse: keep the best one
                # Held back until a checkpoint covers this epoch (`files.promote_best`).
                save_keras(self.state.sampling_models.generator, files.pending_best(self.out_dir))
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
        if every and epoch % every == 0 and self.writes:
            save_keras(
                self.state.sampling_models.generator,
                self.out_dir / files.GENERATORS_DIR / f"generator_epoch_{epoch:04d}.keras",
            )


def epoch_line(row: dict, epochs: int, image: Path) -> str:
    """The one-line summary of an epoch."""
    line = (
        f"epoch {row['epoch']}/{epochs}: d_loss {row['d_loss']:.4f}  "
        f"g_loss {row['g_loss']:.4f}  {row['seconds']:.1f}s  "
        f"{row['images_per_sec']:.0f} img/s"
    )
    if "frechet_distance" in row:  # an evaluated epoch (--eval-every)
        line += "  " + metrics.summary(row)
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


def write_start_artifacts(state: TrainingState, images: np.ndarray, out_dir: Path) -> None:
    """Files that describe the run before it trains: real images and model diagrams."""
    artifacts.save_grid(images[:25], out_dir / files.REAL_DATA_NAME)
    artifacts.plot_model_diagrams(
        dict(
            zip(
                files.DIAGRAM_NAMES,
                (state.models.generator, state.models.discriminator),
                strict=True,
            )
        ),
        out_dir,
    )


def write_run_artifacts(
    state: TrainingState, out_dir: Path, history: list[dict], only_missing: bool = False
) -> None:
    """The end-of-run files: final generator, GIF, montage, ZIP and loss plot."""
    wanted = [
        GENERATOR_NAME,
        files.GIF_NAME,
        files.MONTAGE_NAME,
        files.ZIP_NAME,
        LOSSES_NAME,
    ]
    if not state.runtime.is_chief:
        print("the chief of this multi-worker run writes its files; this worker trained with it")
        return
    if only_missing and not stale(out_dir, wanted):
        return
    save_keras(state.sampling_models.generator, out_dir / GENERATOR_NAME)
    artifacts.write_epoch_summaries(out_dir)
    if history:
        artifacts.plot_losses(history, out_dir / LOSSES_NAME)
    names = [f"{files.IMAGES_DIR}/", *wanted, f"{CHECKPOINT_DIR}/"]
    written = [name for name in names if (out_dir / name.rstrip("/")).exists()]
    print(f"outputs in {out_dir.resolve()}: {', '.join(written)}")


def stale(out_dir: Path, names: list[str]) -> list[str]:
    """The files among ``names`` that are missing or older than the newest checkpoint
    (a run killed between its last checkpoint and its end-of-run files)."""
    saved = [Path(f"{p}.index").stat().st_mtime for p in checkpoint_prefixes(out_dir)]
    newest = max(saved, default=0.0)
    return [
        name
        for name in names
        if not (out_dir / name).exists() or (out_dir / name).stat().st_mtime < newest
    ]


def save_keras(model: keras.Model, path: Path) -> Path:
    """Save a generator as a .keras file, in float32 also from a mixed-precision run
    (its float16 layers would be slow and less exact on a CPU, where it is loaded)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.atomic_path(path) as tmp:
        float32_copy(model).save(tmp)
    return path


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` itself if it computes in float32, else a float32 copy of it (the
    weights of a mixed-precision model are float32 already)."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def in_float32(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=in_float32)
    copy.set_weights(model.get_weights())
    return copy


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
    with files.atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())


def _csv_value(value):
    return f"{value:.6g}" if isinstance(value, float) else value


def remove_epoch_images_after(out_dir: Path, epoch: int) -> None:
    for number, path in artifacts.epoch_images(out_dir):
        if number > epoch:
            path.unlink()


HISTORY_COLUMNS = ["epoch", "d_loss", "g_loss", "seconds", "images_per_sec"]


PROGRESS_SECONDS = 0.25  # how often the loop reads the losses back from the device
