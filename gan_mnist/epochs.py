"""The epoch loop: each epoch's batches through the compiled step, its progress line
or bar, its records (image, history.csv, evaluations), and checkpoints when the
clock says so (every K epochs, every M minutes, at a stop request or the time budget).
`gan_mnist.training.train` sets up the run and calls `run_epochs`."""

from __future__ import annotations

import time

import tensorflow as tf

from gan_mnist.checkpoints import check_finite
from gan_mnist.devices import distribute
from gan_mnist.guards import (
    StopRequest,
    fault_point,
)
from gan_mnist.pipeline import make_dataset
from gan_mnist.records import (
    EpochProgress,
    EpochRecorder,
    epoch_line,
)
from gan_mnist.state import TrainingState
from gan_mnist.step import compile_step


def run_epochs(state, summary, images, labels, data, stop, progress, on_epoch_end, max_minutes):
    """Train epoch after epoch until ``config.epochs``, a stop request or the time
    budget, recording each epoch and checkpointing as the clock says."""
    config, out_dir, history = state.config, summary.out_dir, summary.history
    done, skip = summary.last_epoch, int(state.step_in_epoch.numpy())
    steps = len(images) // config.batch_size
    run_step = compile_step(state, steps)
    recorder = EpochRecorder(state, out_dir, history, data)
    # Every worker of a multi-worker run must save at the same steps: by epochs only.
    minutes = 0 if state.runtime.name == "multiworker" else config.checkpoint_minutes
    clock = CheckpointClock(minutes, max_minutes)
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
        stopping = clock.due(stop, state.runtime)
        clock.checkpoint_epoch(state, epoch, last=epoch == config.epochs or stopping)
        recorder.snapshot(epoch)
        print(epoch_line(row, config.epochs, image_path.relative_to(out_dir)))
        summary.last_epoch = epoch
        if on_epoch_end is not None:
            on_epoch_end(epoch, {**row, "image_path": image_path})
        if stopping:
            summary.stopped_by = clock.reason(stop)
            break


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
        if clock.due(stop, state.runtime):
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


class CheckpointClock:
    """When to checkpoint and when to stop: every ``checkpoint_every`` epochs, after
    ``checkpoint_minutes`` of training since the last checkpoint (mid-epoch if need
    be), and at the end of a ``max_minutes`` budget or on a stop request."""

    def __init__(self, checkpoint_minutes: float, max_minutes: float | None):
        self.interval = 60 * checkpoint_minutes if checkpoint_minutes else None
        now = time.perf_counter()
        self.last_save = now
        self.deadline = None if max_minutes is None else now + 60 * max_minutes
        self._tally = None  # a multi-worker run's vote on stopping, once compiled

    def mid_epoch_due(self) -> bool:
        return self.interval is not None and time.perf_counter() - self.last_save >= self.interval

    def saved(self) -> None:
        self.last_save = time.perf_counter()

    def due(self, stop: StopRequest, runtime=None) -> bool:
        """Whether the run must stop now: a signal, or the time budget is spent, here
        or (a multi-worker run) on any worker. Workers must stop after the same step:
        one stopping alone leaves the others waiting in a collective until they fail,
        and only the chief writes the checkpoint of the partial epoch."""
        wanted = stop.requested or self._out_of_time()
        if runtime is None or runtime.name != "multiworker":
            return wanted
        if self._tally is None:
            strategy = runtime.strategy

            @tf.function
            def tally(vote):  # the votes of all workers, summed
                return strategy.reduce("SUM", strategy.run(tf.identity, (vote,)), axis=None)

            self._tally = tally
        return bool(self._tally(tf.constant(float(wanted))).numpy() > 0)

    def _out_of_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def reason(self, stop: StopRequest) -> str:
        """Why the run stopped: the signal's name, "time", or "worker" (another one)."""
        return stop.name or ("time" if self._out_of_time() else "worker")

    def checkpoint_epoch(self, state: TrainingState, epoch: int, last: bool) -> bool:
        """At the end of an epoch: save when the epoch, the clock or the end says so;
        returns whether it saved."""
        if last or epoch % state.config.checkpoint_every == 0 or self.mid_epoch_due():
            state.save()
            self.saved()
            return True
        return False
