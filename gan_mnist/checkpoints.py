"""How a run is saved and resumed: its checkpoint files, and the divergence check.

A checkpoint is a `tf.train.Checkpoint` of what a run holds (`gan_mnist.state`):
both networks, both Adam optimizers (their moment estimates and step counts),
where the run is, the noise generator's state, the fixed preview noise, and the
settings and data digest that position is counted in (`SavedSettings`; config.json
is rewritten only with a checkpoint, never ahead of it).

What `tf.train.CheckpointManager` promises (TensorFlow 2.21, seen with strace):
each checkpoint's data file is written under a temporary name and renamed, its
``.index`` is written in place, and only then is the ``checkpoint`` index file,
which names the latest, replaced by a rename; nothing is fsynced. So a crash of
the process mid-save leaves the previous checkpoint in charge, but after a power
loss the renamed index could name files that never reached the disk. `save`
therefore fsyncs the new checkpoint's files and folder before that index is
written (TensorFlow's write callback runs between the two) and the index after,
so a checkpoint is on the disk before anything names it or config.json follows
it. In the moment between TensorFlow's rename of the index and its fsync, a power
loss can leave the index empty: the next run rebuilds it from the files
(`rebuild_index`), and readers list the files themselves. A checkpoint whose files
were damaged later is set aside and the newest intact one is used instead.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import tensorflow as tf

from gan_mnist import files
from gan_mnist.checkpoint_files import (  # load_generator: as the notebook imports it
    load_generator,  # noqa: F401
    newest_intact_checkpoint,
    no_intact_message,
    rebuild_index,
)
from gan_mnist.config import TrainConfig
from gan_mnist.errors import UserError
from gan_mnist.files import CHECKPOINT_DIR, CONFIG_NAME
from gan_mnist.guards import TrainingDiverged, fault_point
from gan_mnist.runfolder import checkpoint_prefixes

if TYPE_CHECKING:
    from gan_mnist.state import TrainingState


class RunCheckpoint:
    """A run's checkpoints: restoring the newest intact one into its `TrainingState`,
    and saving it (fsynced, numbered by the batches trained, three kept)."""

    def __init__(self, state: TrainingState):
        self.state = state
        self.out_dir = state.out_dir
        self.restore_dir = state.restore_dir
        self.manager = self._manager()

    def _manager(self) -> tf.train.CheckpointManager:
        def make():
            return tf.train.CheckpointManager(
                self.state.checkpoint,
                str(self.out_dir / CHECKPOINT_DIR),
                max_to_keep=3,
                checkpoint_name="ckpt",
            )

        try:
            manager = make()
        except ValueError:  # an index TensorFlow cannot read (emptied by a power loss)
            rebuild_index(self.out_dir)
            return make()
        # The files are the truth: an index that lists others (a crash between a
        # checkpoint's files and the index naming it) is written again from them.
        files_on_disk = checkpoint_prefixes(self.out_dir)
        if [Path(p).name for p in manager.checkpoints] != [Path(p).name for p in files_on_disk]:
            rebuild_index(self.out_dir)
            manager = make()
        return manager

    def restore(self) -> tuple[int, int]:
        """Load the newest intact checkpoint, if any.

        Damaged ones (unreadable files) are moved to ``training_checkpoints/damaged/``
        with a warning, never deleted.

        Returns:
            (completed epochs, steps done in the next epoch); (0, 0) without a checkpoint.
        """
        own = self.restore_dir == self.out_dir  # only a folder's writer sets files aside
        latest, damaged = newest_intact_checkpoint(self.restore_dir, set_aside=own)
        if damaged and own:
            self.manager = self._manager()  # it re-reads the rewritten index
        if latest is None:
            if damaged:
                raise UserError(no_intact_message(self.out_dir, damaged, own))
            return 0, 0
        state = self.state
        try:
            state.checkpoint.restore(latest).assert_existing_objects_matched()
        # Shape mismatches raise AssertionError/ValueError: other settings made it.
        except (AssertionError, ValueError) as error:
            raise UserError(
                f"the checkpoint {latest} could not be restored into the model being built "
                f"({str(error).splitlines()[0][:200]}). It was made with other settings: "
                "leave the settings out to continue the run with its own, or train into a "
                "new --out folder."
            ) from None
        if int(state.seed.numpy()) != state.config.seed:
            raise UserError(
                f"the checkpoint {latest} was trained with --seed {int(state.seed.numpy())}, "
                f"but this run has seed {state.config.seed} ({CONFIG_NAME} is missing or was "
                f"edited). Give --seed {int(state.seed.numpy())} to continue it with its own "
                "data order and noise."
            )
        scales = state.loss_scales.numpy()
        scaled = state.scaled_optimizers()  # none or both
        for optimizer, (scale, steps) in zip(
            scaled, scales.reshape(2, 2)[: len(scaled)], strict=True
        ):
            if scale > 0:  # saved by a float16 run: go on with its loss scale
                optimizer.dynamic_scale.assign(scale)
                optimizer.step_counter.assign(int(steps))
        return int(state.epoch.numpy()), int(state.step_in_epoch.numpy())

    def save(self) -> str:
        """Checkpoint the run as it is now, numbered by the batches trained (unless no
        batch was trained since the newest one, which already holds this state).

        Raises:
            TrainingDiverged: a weight is NaN or infinite; nothing is written.
        """
        state = self.state
        networks = {
            "generator": state.models.generator,
            "discriminator": state.models.discriminator,
            "averaged generator (--ema)": state.average_generator,
        }
        for name, network in networks.items():
            if network is not None and not all(
                bool(tf.reduce_all(tf.math.is_finite(v))) for v in network.weights
            ):
                epoch, step = int(state.epoch.numpy()), int(state.step_in_epoch.numpy())
                where = f"by epoch {epoch + 1}, step {step}" if step else f"by epoch {epoch}"
                raise diverged(state, where, f"a weight of the {name}")
        latest = self.manager.latest_checkpoint
        if latest and int(latest.rsplit("-", 1)[1]) == state.global_step:
            if state.runtime.is_chief:
                files.promote_best(self.out_dir)
            return latest  # no step since: it holds this state already (never rewrite it)
        scaled = state.scaled_optimizers()
        if scaled:
            state.loss_scales.assign(
                [float(v.numpy()) for o in scaled for v in (o.dynamic_scale, o.step_counter)]
            )
        # The callbacks run once the checkpoint's files are written, before the index
        # names it "latest": they fsync them; the fault tests kill the process there.
        options = tf.train.CheckpointOptions(
            experimental_write_callbacks=[on_disk, lambda path: fault_point("mid-checkpoint")]
        )
        state.saved_settings.text = json.dumps(
            {"config": dataclasses.asdict(state.config), "data": state.data_digest}
        )
        path = self.manager.save(checkpoint_number=state.global_step, options=options)
        folder = Path(self.manager.directory)
        files.sync(folder / "checkpoint")  # the index naming it, and its rename
        files.sync(folder)
        if state.runtime.is_chief:
            write_config(state.config, self.out_dir)  # a changed setting, with its checkpoint
            files.promote_best(self.out_dir)  # every checkpoint, mid-epoch ones too
        return path


def on_disk(prefix: str) -> None:
    """fsync a just-written checkpoint's files (``prefix``.index, .data-…) and their
    folder, before TensorFlow's ``checkpoint`` index names it."""
    written = Path(prefix)
    for part in written.parent.glob(written.name + ".*"):
        files.sync(part)
    files.sync(written.parent)


def write_config(config: TrainConfig, out_dir: Path) -> None:
    """config.json for ``config``, unless it says so already (atomically, synced)."""
    from gan_mnist.files import atomic_path

    path = Path(out_dir) / CONFIG_NAME
    text = config.to_json()
    if path.exists() and path.read_text() == text:
        return
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def check_finite(state: TrainingState, epoch: int) -> dict:
    """The epoch's mean losses so far; raise if one step's loss was NaN or infinite."""
    bad_step = int(state.nonfinite_at.numpy())
    if bad_step >= 0:
        raise diverged(state, f"at epoch {epoch}, step {bad_step}", "a loss")
    count = max(int(state.step_in_epoch.numpy()), 1)
    d_sum, g_sum = state.loss_sums.numpy()
    return {"d_loss": float(d_sum / count), "g_loss": float(g_sum / count)}


def diverged(state: TrainingState, where: str, what: str) -> TrainingDiverged:
    """The one message for a NaN or infinite loss (seen as the loop reads the losses)
    or weight (seen before a save): what broke, where, what is kept, what to try."""
    latest = state.manager.latest_checkpoint
    kept = (
        f"the last good checkpoint ({Path(latest).name}) and the files of the epochs "
        "before it are intact"
        if latest
        else "no checkpoint had been written yet"
    )
    return TrainingDiverged(
        f"training diverged {where}: {what} became NaN or infinite. Nothing since the last "
        f"checkpoint was saved; {kept}. "
        + TrainingDiverged.advice(state.config, state.out_dir, kept=bool(latest))
    )
