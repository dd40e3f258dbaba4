"""What a run holds, built under its strategy: both networks (and the averaged
generator), both Adam optimizers, where the run is (epochs, steps, the partial
epoch's loss sums, the NaN flag), its seed and noise generator, the preview's
fixed noise, and the settings its position is counted in. `gan_mnist.checkpoints`
saves all of it and restores it."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gan_mnist import devices
from gan_mnist.checkpoints import RunCheckpoint
from gan_mnist.config import TrainConfig
from gan_mnist.devices import Runtime
from gan_mnist.models import build_models
from gan_mnist.models.base import GanModels, average_of, synchronize_batchnorm


class TrainingState:
    """The models, optimizers and counters of one run; ``store`` (`RunCheckpoint`)
    saves and restores them."""

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
        self.store = RunCheckpoint(self)  # its files: restore() and save() use it

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
        parts = dict(
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
        self.checkpoint = tf.train.Checkpoint(**parts)

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

    @property
    def global_step(self) -> int:
        return int(self.step.numpy())

    def scaled_optimizers(self) -> list:
        """The float16 runs' LossScaleOptimizers (none or both)."""
        return [
            optimizer
            for optimizer in (self.generator_optimizer, self.discriminator_optimizer)
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        ]

    def restore(self) -> tuple[int, int]:
        """Load the newest intact checkpoint (`RunCheckpoint.restore`): (completed
        epochs, steps done in the next epoch); (0, 0) without one."""
        position = self.store.restore()
        # Learning rates are settings, not state: a resumed run uses the current ones.
        for adam, rate in self.adams_and_rates():
            adam.learning_rate = rate
        return position

    def adams_and_rates(self) -> list[tuple]:
        """Each network's Adam (inside a LossScaleOptimizer too) with its configured
        learning rate (--gen-lr, --disc-lr)."""
        return [
            (adam_of(self.generator_optimizer), self.config.gen_lr),
            (adam_of(self.discriminator_optimizer), self.config.disc_lr),
        ]

    def save(self) -> str:
        """Checkpoint the run as it is now (`RunCheckpoint.save`): its path."""
        return self.store.save()

    @property
    def manager(self) -> tf.train.CheckpointManager:
        return self.store.manager


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


def image_digest(images: np.ndarray) -> str:
    """A short digest of a run's training images (--data, --limit, the data set)."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]
