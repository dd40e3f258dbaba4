"""What a checkpoint holds, and how a run is saved, resumed and read back.

A checkpoint is a `tf.train.Checkpoint` of both networks, both Adam optimizers
(their moment estimates and step counts), where the run is (completed epochs and
steps into the next one, with that partial epoch's loss sums), the noise
generator's state, the fixed preview noise, and the settings and data digest that
position is counted in (`SavedSettings`; config.json is rewritten only with a
checkpoint, never ahead of it).

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

import contextlib
import dataclasses
import hashlib
import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gan_mnist import devices, files
from gan_mnist.checkpoint_files import (  # load_generator: as the notebook imports it
    load_generator,  # noqa: F401
    newest_intact_checkpoint,
    no_intact_message,
    rebuild_index,
)
from gan_mnist.config import TrainConfig
from gan_mnist.devices import Runtime
from gan_mnist.errors import UserError
from gan_mnist.files import CHECKPOINT_DIR, CONFIG_NAME
from gan_mnist.guards import TrainingDiverged, fault_point
from gan_mnist.models import build_models
from gan_mnist.models.base import GanModels, average_of, synchronize_batchnorm


class TrainingState:
    """The models, optimizers and counters of one run, and their checkpoint."""

    def __init__(
        self,
        config: TrainConfig,
        out_dir: Path,
        models: GanModels | None = None,
        runtime: Runtime | None = None,
        restore_dir: Path | None = None,
    ):
        """``restore_dir``: where the checkpoint to resume is, when not ``out_dir`` (a
        multi-worker run's other workers read the chief's and write to scratch)."""
        if config.seed is None:
            raise ValueError("TrainingState needs a config with a seed")
        self.config = config
        self.out_dir = Path(out_dir)
        self.restore_dir = Path(restore_dir or out_dir)
        self.runtime = runtime = runtime or devices.runtime(config)
        # Made under the strategy's scope, every variable below (weights, optimizer
        # slots, counters, the noise generator) is mirrored on each replica.
        with runtime.strategy.scope():
            self._build(config, models, runtime)
        self.manager = self._manager()

    def _build(self, config: TrainConfig, models: GanModels | None, runtime) -> None:
        with _dtype_policy(runtime.mixed_precision):
            self.models = models or build_models(config)
            if runtime.replicas > 1 and config.sync_batchnorm == "on":
                synchronize_batchnorm(self.models)
            # The averaged generator (--ema): previews, samples and evaluations use it.
            self.average_generator = average_of(self.models.generator) if config.ema else None
        adams = self._build_optimizers(config, runtime)
        self._make_counters(config)
        averaged = {"average_generator": self.average_generator} if config.ema else {}
        self.parts = dict(
            generator=self.models.generator,
            discriminator=self.models.discriminator,
            generator_optimizer=adams[0],
            discriminator_optimizer=adams[1],
            **averaged,
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            loss_sums=self.loss_sums,
            rng=self.rng,
            fixed_noise=self.fixed_noise,
            # Dropout draws its masks from Keras seed generators, which the networks'
            # own checkpoint entries leave out: saved here, a resumed run draws the
            # masks it would have drawn, and matches an uninterrupted one bit for bit.
            dropout_seeds=self.dropout_seeds(),
            step=self.step,
            seed=self.seed,
            loss_scales=self.loss_scales,
            settings=self.saved_settings,
        )
        self.checkpoint = tf.train.Checkpoint(**self.parts)

    def _build_optimizers(self, config: TrainConfig, runtime) -> list:
        """Both optimizers (wrapped for float16); returns the two Adams themselves."""
        adams = [
            keras.optimizers.Adam(lr, beta_1=config.beta_1)
            for lr in (config.gen_lr, config.disc_lr)
        ]
        # float16: Keras 3's dynamic loss scaling around each Adam (bfloat16 has
        # float32's range and needs none). The checkpoint holds the Adams themselves,
        # so a run can resume with any precision.
        scaled = runtime.mixed_precision == "mixed_float16"
        self.generator_optimizer, self.discriminator_optimizer = (
            keras.optimizers.LossScaleOptimizer(adam) if scaled else adam for adam in adams
        )
        # Create the optimizers' slot variables now, so a restore fills them in
        # directly instead of deferring until the first training step.
        self.generator_optimizer.build(self.models.generator.trainable_variables)
        self.discriminator_optimizer.build(self.models.discriminator.trainable_variables)
        return adams

    def _make_counters(self, config: TrainConfig) -> None:
        """Where the run is: epochs and steps, loss sums, the NaN flag, the step count,
        the seed, the loss scales, the noise generator and the preview's fixed noise."""
        counter = dict(trainable=False, dtype=tf.int64)
        self.epoch = tf.Variable(0, name="epoch", **counter)  # completed epochs
        self.step_in_epoch = tf.Variable(0, name="step_in_epoch", **counter)  # of the next one
        # The partial epoch's (d_loss, g_loss) sums, kept on the device: the loop
        # reads them only to show progress, not after every step.
        self.loss_sums = tf.Variable([0.0, 0.0], trainable=False, name="loss_sums")
        # The step (within the epoch) whose loss first was NaN or infinite, else -1.
        self.nonfinite_at = tf.Variable(-1, name="nonfinite_at", **counter)
        # Batches trained by the run: numbers its checkpoints. Adam's own count does
        # not advance on a float16 step skipped for an overflow, so ckpt-N could be
        # written twice, over the newest good checkpoint.
        self.step = tf.Variable(0, name="step", **counter)
        # The run's seed (its data order and noise), in case config.json is lost.
        self.seed = tf.Variable(config.seed, name="seed", **counter)
        self.saved_settings = SavedSettings()
        self.data_digest = ""  # set by the training loop: `image_digest` of its images
        # float16: each optimizer's loss scale and its steps since the last change,
        # copied from the LossScaleOptimizers at each save (0 = not float16).
        self.loss_scales = tf.Variable([0.0] * 4, trainable=False, name="loss_scales")
        self.rng = tf.random.Generator.from_seed(config.seed)
        # The preview grid draws the same noise every epoch, so the GIF shows the
        # same 16 "digits" taking shape (conditional families: one column each).
        preview_rng = tf.random.Generator.from_seed(config.seed + 1)
        self.fixed_noise = tf.Variable(
            preview_rng.normal([config.num_examples, config.noise_dim]),
            trainable=False,
            name="fixed_noise",
        )

    def dropout_seeds(self) -> list:
        """The Keras seed generators' states of the networks' Dropout layers."""
        return [
            variable.value
            for network in (self.models.generator, self.models.discriminator)
            for variable in network.non_trainable_variables
            if variable.path.endswith("seed_generator_state")
        ]

    def spread_dropout_seeds(self) -> None:
        """Give each replica its own Dropout masks. A seed state is mirrored with the
        same value on every replica (and a checkpoint keeps the first replica's), so
        all replicas would drop the same units; the replica's number is added to its
        copy's seed, after the checkpoint is restored and before training."""
        seeds = self.dropout_seeds()
        if self.runtime.replicas == 1 or not seeds:
            return

        def spread():
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            for state in seeds:
                state.assign_add(tf.stack([tf.cast(replica, tf.int64) * 7919, 0]))

        self.runtime.strategy.run(tf.function(spread))

    def forget_partial_epoch(self) -> None:
        """The next epoch starts at its first batch with empty loss sums."""
        self.step_in_epoch.assign(0)
        self.loss_sums.assign([0.0, 0.0])

    @property
    def sampling_models(self) -> GanModels:
        """The networks that draw previews and samples: with --ema, the averaged
        generator in place of the training one."""
        if self.average_generator is None:
            return self.models
        return dataclasses.replace(self.models, generator=self.average_generator)

    def _manager(self) -> tf.train.CheckpointManager:
        def make():
            return tf.train.CheckpointManager(
                self.checkpoint,
                str(self.out_dir / CHECKPOINT_DIR),
                max_to_keep=3,
                checkpoint_name="ckpt",
            )

        try:
            return make()
        except ValueError:  # an index TensorFlow cannot read (emptied by a power loss)
            rebuild_index(self.out_dir)
            return make()

    @property
    def global_step(self) -> int:
        return int(self.step.numpy())

    def _scaled_optimizers(self) -> list:
        return [
            optimizer
            for optimizer in (self.generator_optimizer, self.discriminator_optimizer)
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        ]

    def _restore_parts(self, path: str) -> tuple[tf.train.Checkpoint, set[str]]:
        """What to restore from ``path``: everything, less the entries that checkpoints
        written before they existed lack (their step count is then Adam's); and those."""
        saved = {name.split("/", 1)[0] for name, _ in tf.train.list_variables(path)}
        missing = {k for k in ("step", "seed", "loss_scales", "settings") if k not in saved}
        if not missing:
            return self.checkpoint, missing
        parts = {k: v for k, v in self.parts.items() if k not in missing}
        return tf.train.Checkpoint(**parts), missing

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
        checkpoint, missing = self._restore_parts(latest)
        try:
            checkpoint.restore(latest).assert_existing_objects_matched()
        # Shape mismatches raise AssertionError/ValueError: other settings made it.
        except (AssertionError, ValueError) as error:
            raise UserError(
                f"the checkpoint {latest} could not be restored into the model being built "
                f"({str(error).splitlines()[0][:200]}). It was made with other settings: use "
                "the settings in config.json, or train into a new --out folder."
            ) from None
        except tf.errors.OpError as error:  # the files themselves: permissions, I/O
            raise UserError(
                f"the checkpoint {latest} could not be read ({error.message[:200]}). Check the "
                "folder's permissions and disk, then run the same command again."
            ) from None
        if "step" in missing:  # written before the step count was saved
            self.step.assign(adam_of(self.generator_optimizer).iterations)
            self.seed.assign(self.config.seed)
        if int(self.seed.numpy()) != self.config.seed:
            raise UserError(
                f"the checkpoint {latest} was trained with --seed {int(self.seed.numpy())}, "
                f"but this run has seed {self.config.seed} ({CONFIG_NAME} is missing or was "
                f"edited). Give --seed {int(self.seed.numpy())} to continue it with its own "
                "data order and noise."
            )
        scales = self.loss_scales.numpy()
        scaled = self._scaled_optimizers()  # none or both
        for optimizer, (scale, steps) in zip(
            scaled, scales.reshape(2, 2)[: len(scaled)], strict=True
        ):
            if scale > 0:  # saved by a float16 run: go on with its loss scale
                optimizer.dynamic_scale.assign(scale)
                optimizer.step_counter.assign(int(steps))
        # Learning rates are settings, not state: a resumed run uses the current ones.
        adam_of(self.generator_optimizer).learning_rate = self.config.gen_lr
        adam_of(self.discriminator_optimizer).learning_rate = self.config.disc_lr
        return int(self.epoch.numpy()), int(self.step_in_epoch.numpy())

    def save(self) -> str:
        """Checkpoint the run as it is now, numbered by the batches trained (unless no
        batch was trained since the newest one, which already holds this state).

        Raises:
            TrainingDiverged: a weight is NaN or infinite; nothing is written.
        """
        for network in (self.models.generator, self.models.discriminator):
            if not all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in network.weights):
                epoch, step = int(self.epoch.numpy()), int(self.step_in_epoch.numpy())
                where = f"by epoch {epoch + 1}, step {step}" if step else f"by epoch {epoch}"
                raise diverged(self, where, f"a weight of the {network.name}")
        latest = self.manager.latest_checkpoint
        if latest and int(latest.rsplit("-", 1)[1]) == self.global_step:
            return latest  # no step since: it holds this state already (never rewrite it)
        scaled = self._scaled_optimizers()
        if scaled:
            self.loss_scales.assign(
                [float(v.numpy()) for o in scaled for v in (o.dynamic_scale, o.step_counter)]
            )
        # The callbacks run once the checkpoint's files are written, before the index
        # names it "latest": they fsync them; the fault tests kill the process there.
        options = tf.train.CheckpointOptions(
            experimental_write_callbacks=[on_disk, lambda path: fault_point("mid-checkpoint")]
        )
        self.saved_settings.text = json.dumps(
            {"config": dataclasses.asdict(self.config), "data": self.data_digest}
        )
        path = self.manager.save(checkpoint_number=self.global_step, options=options)
        folder = Path(self.manager.directory)
        files.sync(folder / "checkpoint")  # the index naming it, and its rename
        files.sync(folder)
        if self.runtime.is_chief:
            write_config(self.config, self.out_dir)  # a changed setting, with its checkpoint
        return path


def on_disk(prefix: str) -> None:
    """fsync a just-written checkpoint's files (``prefix``.index, .data-…) and their
    folder, before TensorFlow's ``checkpoint`` index names it."""
    written = Path(prefix)
    for part in written.parent.glob(written.name + ".*"):
        files.sync(part)
    files.sync(written.parent)


class SavedSettings(tf.train.experimental.PythonState):
    """What a checkpoint's position is counted in, saved inside it: the run's settings
    (config.json's text) and a digest of the images it trains on. A resume compares
    them with its own, so a batch position saved with other units is never reused."""

    def __init__(self):
        self.text = ""  # JSON: {"config": {...}, "data": digest}; "" before the first save

    def serialize(self) -> str:
        return self.text

    def deserialize(self, text) -> None:
        self.text = text.decode() if isinstance(text, bytes) else str(text)

    def read(self) -> tuple[TrainConfig | None, str | None]:
        """(the settings, the data digest) of the restored checkpoint, or Nones."""
        if not self.text:
            return None, None
        saved = json.loads(self.text)
        return TrainConfig.from_dict(saved["config"]), saved["data"]


def adam_of(optimizer):
    """The Adam itself, also inside a mixed-precision LossScaleOptimizer."""
    return getattr(optimizer, "inner_optimizer", optimizer)


@contextlib.contextmanager
def _dtype_policy(name: str | None):
    """Build layers under Keras' dtype policy ``name`` (None: leave it), then restore it."""
    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def write_config(config: TrainConfig, out_dir: Path) -> None:
    """config.json for ``config``, unless it says so already (atomically, synced)."""
    from gan_mnist.files import atomic_path

    path = Path(out_dir) / CONFIG_NAME
    text = config.to_json()
    if path.exists() and path.read_text() == text:
        return
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def image_digest(images: np.ndarray) -> str:
    """A short digest of a run's training images (--data, --limit, the data set)."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]


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
        f"checkpoint was saved; {kept}. " + TrainingDiverged.advice(state.config)
    )
