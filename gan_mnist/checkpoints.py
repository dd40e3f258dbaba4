"""What a checkpoint holds, and how a run is saved and resumed.

A checkpoint is `tf.train.Checkpoint` of both networks, both Adam optimizers
(their moment estimates and step counts), the epoch counter, the noise
generator's state and the fixed preview noise. `tf.train.CheckpointManager`
writes each one completely before it updates the ``checkpoint`` index file
(atomically), so a crash mid-save leaves the previous checkpoint in charge.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from gan_mnist.config import TrainConfig
from gan_mnist.errors import UserError, check_run_dir
from gan_mnist.models import GanModels, build_models

CHECKPOINT_DIR = "training_checkpoints"
CONFIG_NAME = "config.json"


class TrainingState:
    """The models, optimizers and counters of one run, and their checkpoint."""

    def __init__(self, config: TrainConfig, out_dir: Path, models: GanModels | None = None):
        if config.seed is None:
            raise ValueError("TrainingState needs a config with a seed")
        self.config = config
        self.models = models or build_models(config)
        self.generator_optimizer = keras.optimizers.Adam(config.gen_lr, beta_1=config.beta_1)
        self.discriminator_optimizer = keras.optimizers.Adam(config.disc_lr, beta_1=config.beta_1)
        # Create the optimizers' slot variables now, so a restore fills them in
        # directly instead of deferring until the first training step.
        self.generator_optimizer.build(self.models.generator.trainable_variables)
        self.discriminator_optimizer.build(self.models.discriminator.trainable_variables)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.rng = tf.random.Generator.from_seed(config.seed)
        # The preview grid draws the same noise every epoch, so the GIF shows the
        # same 16 "digits" taking shape.
        preview_rng = tf.random.Generator.from_seed(config.seed + 1)
        self.fixed_noise = tf.Variable(
            preview_rng.normal([config.num_examples, config.noise_dim]),
            trainable=False,
            name="fixed_noise",
        )
        self.checkpoint = tf.train.Checkpoint(
            generator=self.models.generator,
            discriminator=self.models.discriminator,
            generator_optimizer=self.generator_optimizer,
            discriminator_optimizer=self.discriminator_optimizer,
            epoch=self.epoch,
            rng=self.rng,
            fixed_noise=self.fixed_noise,
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint,
            str(Path(out_dir) / CHECKPOINT_DIR),
            max_to_keep=3,
            checkpoint_name="ckpt",
        )

    def restore(self) -> int:
        """Load the latest checkpoint, if any; return the epoch it was saved at (0 if none)."""
        latest = self.manager.latest_checkpoint
        if latest is None:
            return 0
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        # Shape mismatches raise AssertionError/ValueError; damaged files raise OpError,
        # IndexError and others from the reader: all mean "this checkpoint cannot be used".
        except Exception as error:
            raise UserError(
                f"the checkpoint {latest} could not be restored into the model being built "
                f"({str(error).splitlines()[0][:200]}). It was made with other settings or "
                "its files are damaged: use the settings in config.json, delete that "
                "checkpoint to fall back to the previous one, or train into a new --out folder."
            ) from None
        # Learning rates are settings, not state: a resumed run uses the current ones.
        self.generator_optimizer.learning_rate = self.config.gen_lr
        self.discriminator_optimizer.learning_rate = self.config.disc_lr
        return int(self.epoch.numpy())

    def save(self, epoch: int) -> str:
        self.epoch.assign(epoch)
        return self.manager.save(checkpoint_number=epoch)


def saved_config(out_dir: Path) -> TrainConfig | None:
    """The config a previous run wrote into ``out_dir``, if any."""
    path = Path(out_dir) / CONFIG_NAME
    if not path.exists():
        return None
    try:
        return TrainConfig.from_json_file(path)
    except (ValueError, TypeError) as error:
        raise UserError(
            f"{path} is not a valid run config ({error}). Remove it or "
            "train into a new --out folder."
        ) from None


def has_checkpoint(out_dir: Path) -> bool:
    return tf.train.latest_checkpoint(str(Path(out_dir) / CHECKPOINT_DIR)) is not None


def check_resumable(config: TrainConfig, out_dir: Path) -> TrainConfig | None:
    """Refuse to resume a checkpoint made with another architecture or dataset.

    Returns:
        The previous run's config when ``out_dir`` holds a checkpoint, else None.
    """
    if not has_checkpoint(out_dir):
        return None
    previous = saved_config(out_dir)
    if previous is None:
        return None
    differences = config.fixed_differences(previous)
    if differences:
        raise UserError(
            f"{out_dir} holds a checkpoint of a different run ({'; '.join(differences)}). "
            "Its weights cannot continue with these settings. Use another --out folder "
            "for a new run, or drop the changed flags to resume it."
        )
    return previous


def load_generator(run_dir: Path) -> tuple[GanModels, TrainConfig, str]:
    """The generator of a run: its latest checkpoint, or else its ``generator.keras``.

    Returns:
        (models, config, description of what was loaded).
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    config = saved_config(run_dir)
    if config is not None and has_checkpoint(run_dir):
        models = build_models(config)
        latest = tf.train.latest_checkpoint(str(run_dir / CHECKPOINT_DIR))
        # Only the generator is needed: expect_partial silences the unused rest.
        tf.train.Checkpoint(generator=models.generator).restore(latest).expect_partial()
        return models, config, latest
    saved = run_dir / "generator.keras"
    if saved.exists():
        generator = keras.models.load_model(saved, compile=False)
        config = config or TrainConfig(noise_dim=int(generator.input_shape[-1]))
        models = GanModels(generator=generator, discriminator=None, noise_dim=config.noise_dim)
        return models, config, str(saved)
    raise UserError(
        f"{run_dir} holds no checkpoint and no generator.keras. Train first with "
        f"`gan-mnist train --out {run_dir}`, or pass the folder of a finished run."
    )
