"""The training loop: epochs of `train_step`, checkpoints, resume and per-epoch artifacts."""

from __future__ import annotations

import csv
import io
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gan_mnist import artifacts
from gan_mnist.checkpoints import CHECKPOINT_DIR, CONFIG_NAME, TrainingState, check_resumable
from gan_mnist.config import TrainConfig
from gan_mnist.data import Mnist, load_mnist, make_dataset, to_uint8
from gan_mnist.errors import UserError
from gan_mnist.step import make_train_step

HISTORY_COLUMNS = ["epoch", "d_loss", "g_loss", "seconds", "images_per_sec"]
HISTORY_NAME = "history.csv"

# Called after each epoch with (epoch, logs); logs has the history row plus "image_path".
EpochCallback = Callable[[int, dict], None]


@dataclass
class RunSummary:
    """What `train` did: the output folder, the epochs it trained and every epoch's row."""

    out_dir: Path
    config: TrainConfig
    first_epoch: int  # the first epoch this call trained (or would have trained)
    last_epoch: int  # the run's epoch when this call ended
    history: list[dict]
    images_trained: int = 0  # real images this call trained on
    stopped_by_time: bool = False  # max_minutes ran out (the last epoch may be partial)


def train(
    config: TrainConfig,
    out_dir: str | Path = ".",
    *,
    mnist: Mnist | None = None,
    quiet: bool = False,
    on_epoch_end: EpochCallback | None = None,
    max_minutes: float | None = None,
) -> RunSummary:
    """Train (or resume) a GAN in ``out_dir`` until ``config.epochs``, writing every artifact.

    Args:
        config: the run's settings (see `gan_mnist.config`).
        out_dir: created if missing; holds checkpoints, images and logs.
        mnist: arrays to train on; by default `load_mnist(config.data)`.
        quiet: no progress bar, only one line per epoch (for log files).
        on_epoch_end: called after each epoch's artifacts are written.
        max_minutes: stop training after this many minutes (the epoch running then
            ends early and is checkpointed); for equal-time comparisons and short
            sessions. Rerunning continues from there.

    Returns:
        A `RunSummary`.
    """
    out_dir = prepare_out_dir(out_dir)
    previous = check_resumable(config, out_dir)
    if config.seed is None:
        config = replace(config, seed=previous.seed if previous else secrets.randbelow(2**31))
    print(f"seed: {config.seed}")
    keras.utils.set_random_seed(config.seed)  # weights' init and dropout masks

    mnist = mnist or load_mnist(config.data)
    images, labels = mnist.x_train, mnist.y_train
    if config.limit is not None:
        images, labels = images[: config.limit], labels[: config.limit]
    if config.batch_size > len(images):
        raise UserError(
            f"--batch-size {config.batch_size} is larger than the {len(images)} training "
            "images: lower --batch-size or raise --limit."
        )
    print(f"data: {len(images)} training images from {mnist.source}")

    state = TrainingState(config, out_dir)
    start = state.restore()
    if start:
        print(f"resuming from the checkpoint of epoch {start} in {out_dir / CHECKPOINT_DIR}")
    history = read_history(out_dir / HISTORY_NAME, up_to_epoch=start)
    summary = RunSummary(out_dir, config, start + 1, start, history)
    if start >= config.epochs:
        print(
            f"already trained to epoch {start} (>= --epochs {config.epochs}); nothing to do. "
            "Pass a larger --epochs to train further."
        )
        write_run_artifacts(state, out_dir, history, only_missing=True)
        return summary

    with artifacts.atomic_path(out_dir / CONFIG_NAME) as tmp:
        tmp.write_text(config.to_json())
    if start == 0:
        write_start_artifacts(state, images, out_dir)
    _remove_epoch_images_after(out_dir, start)  # left by a run killed before its checkpoint

    dataset = make_dataset(images, labels, config.batch_size, seed=config.seed)
    steps = len(images) // config.batch_size
    train_step = make_train_step(
        state.models, state.generator_optimizer, state.discriminator_optimizer, state.rng
    )
    writer = tf.summary.create_file_writer(str(out_dir / "logs"))
    evaluation = None
    if config.eval_every:
        from gan_mnist.evaluator import TrainingEvaluation

        evaluation = TrainingEvaluation(mnist, config.eval_samples, config.seed, history)

    deadline = None if max_minutes is None else time.perf_counter() + 60 * max_minutes
    for epoch in range(start + 1, config.epochs + 1):
        if not quiet:
            print(f"Epoch {epoch}/{config.epochs}")
        row = run_epoch(train_step, dataset, steps, config.batch_size, quiet, deadline)
        summary.images_trained += row.pop("steps") * config.batch_size
        summary.stopped_by_time = deadline is not None and time.perf_counter() >= deadline
        row = {"epoch": epoch, **row}
        image_path = artifacts.epoch_image_path(out_dir, epoch)
        grid = artifacts.image_grid(preview_images(state))
        artifacts.save_png(grid, image_path)
        if evaluation is not None and epoch % config.eval_every == 0:
            scores, improved = evaluation(state.models)
            row.update(scores)
            if improved:  # late GAN epochs often get worse: keep the best one
                save_keras(state.models.generator, out_dir / "generator_best.keras")

        history.append(row)
        write_history(history, out_dir / HISTORY_NAME)
        with writer.as_default(step=epoch):
            for key, value in row.items():
                if key not in ("epoch", "seconds"):
                    tf.summary.scalar(key, value)
            tf.summary.image("generated_digits", grid[np.newaxis, ..., np.newaxis])
        writer.flush()

        last = epoch == config.epochs or summary.stopped_by_time
        if epoch % config.checkpoint_every == 0 or last:
            state.save(epoch)
        if config.save_generator_every and epoch % config.save_generator_every == 0:
            save_keras(
                state.models.generator,
                out_dir / "generators" / f"generator_epoch_{epoch:04d}.keras",
            )
        print(epoch_line(row, config.epochs, image_path.relative_to(out_dir)))
        summary.last_epoch = epoch
        if on_epoch_end is not None:
            on_epoch_end(epoch, {**row, "image_path": image_path})
        if summary.stopped_by_time:
            print(
                f"stopped after {max_minutes:g} minutes (--max-minutes), checkpointed at "
                f"epoch {epoch}; run again to continue."
            )
            break

    write_run_artifacts(state, out_dir, history)
    return summary


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
            f"digits {row['digits_covered']}"
        )
    return f"{line}  -> {image}"


def run_epoch(
    train_step, dataset, steps: int, batch_size: int, quiet: bool, deadline: float | None = None
) -> dict:
    """One pass over the data (cut short at ``deadline``, a `time.perf_counter` value).

    Returns:
        The epoch's mean losses, its training seconds, images/s and steps done.
    """
    # All metrics "stateful": the bar shows exactly the running means computed here.
    progbar = (
        None
        if quiet
        else keras.utils.Progbar(steps, stateful_metrics=["d_loss", "g_loss", "img/s"])
    )
    d_total = g_total = 0.0
    started = time.perf_counter()
    step = 0
    for step, (images, labels) in enumerate(dataset, start=1):
        losses = train_step(images, labels)
        d_total += float(losses["d_loss"])
        g_total += float(losses["g_loss"])
        if progbar is not None:
            speed = step * batch_size / (time.perf_counter() - started)
            progbar.update(
                step, [("d_loss", d_total / step), ("g_loss", g_total / step), ("img/s", speed)]
            )
        if deadline is not None and time.perf_counter() >= deadline:
            break
    seconds = time.perf_counter() - started
    return {
        "d_loss": d_total / step,
        "g_loss": g_total / step,
        "seconds": seconds,
        "images_per_sec": step * batch_size / seconds,
        "steps": step,
    }


def preview_images(state: TrainingState) -> np.ndarray:
    """The generator's images for the fixed noise, uint8 (num_examples, 28, 28)."""
    # training=False: BatchNorm uses its moving averages, as at inference time.
    generated = state.models.generate(state.fixed_noise, training=False)
    return to_uint8(generated)[..., 0]


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
    """Files that describe the run before it trains: real digits and model diagrams."""
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
    if only_missing and all((out_dir / name).exists() for name in wanted):
        return
    save_keras(state.models.generator, out_dir / "generator.keras")
    artifacts.write_epoch_summaries(out_dir)
    if history:
        artifacts.plot_losses(history, out_dir / "losses.png")
    print(
        f"outputs in {out_dir.resolve()}: {artifacts.IMAGES_DIR}/, {artifacts.GIF_NAME}, "
        f"{artifacts.MONTAGE_NAME}, {artifacts.ZIP_NAME}, losses.png, generator.keras, "
        f"{CHECKPOINT_DIR}/"
    )


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
