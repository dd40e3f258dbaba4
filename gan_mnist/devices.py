"""Where training runs: the `tf.distribute` strategy and the hardware levers.

Every run trains through a strategy, so one device, several GPUs, a TPU or several
machines use the same step, loop and checkpoints:

- ``one``: the default strategy (no distribution): exactly the single-device code.
- ``mirrored``: `tf.distribute.MirroredStrategy` over the local GPUs, or with none
  over ``GAN_MNIST_CPU_DEVICES`` logical CPU devices (how the tests run 2 replicas
  on a CPU; it does not make a CPU faster, the replicas share its cores).
- ``multiworker``: `tf.distribute.MultiWorkerMirroredStrategy`; the cluster comes
  from the standard ``TF_CONFIG`` variable. Only the chief writes the run's files.
- ``tpu``: `tf.distribute.TPUStrategy` on a Colab or Cloud TPU runtime.

The levers (`jit_compile`, mixed precision, steps per compiled call) default to
``auto``: on with a GPU or TPU, off on a CPU. On this project's CPU float16 was
measured several times slower; XLA was measured faster for the InfoGAN paper's
networks, so the presets that train them (`demo`, `fast`) set ``jit_compile="on"``
themselves, and it was not measured for the other families' networks there
(docs/results.md, "Speed").

Nothing here imports TensorFlow at import time: the CLI checks flags without it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan_mnist.errors import UserError

STRATEGIES = ("auto", "one", "mirrored", "multiworker", "tpu")
LEVER_CHOICES = ("auto", "on", "off")
PRECISION_CHOICES = ("auto", "off", "float16", "bfloat16")
CPU_DEVICES_ENV = "GAN_MNIST_CPU_DEVICES"
# Steps per compiled call with an accelerator: one host round trip per 16 steps.
ACCELERATOR_STEPS_PER_CALL = 16

_made: dict[str, Any] = {}  # a process makes each strategy once (TPUs and clusters init once)


@dataclass(frozen=True)
class Runtime:
    """The strategy a run trains under and the levers resolved for this hardware."""

    strategy: Any  # tf.distribute.Strategy
    name: str  # one, mirrored, multiworker or tpu (never auto)
    accelerator: str  # cpu, gpu or tpu
    jit_compile: bool
    mixed_precision: str | None  # a Keras dtype policy (mixed_float16, mixed_bfloat16) or None
    steps_per_call: int
    is_chief: bool = True  # multiworker: only the chief writes the run's files

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def distributed(self) -> bool:
        return self.name != "one"

    def describe(self) -> str:
        """The devices and, in plain words, each speed-up that is on (printed before
        training, so a GPU user knows what `auto` chose)."""
        on = {True: "on", False: "off"}
        line = (
            f"devices: {self.name} strategy, {self.replicas} replica(s) on {self.accelerator}; "
            f"XLA {on[self.jit_compile]}, mixed precision {self.mixed_precision or 'off'}, "
            f"{self.steps_per_call} step(s) per call"
        )
        levers = []
        if self.jit_compile:
            levers.append("XLA compiles each training step into fused kernels (--jit-compile)")
        if self.mixed_precision:
            kind = self.mixed_precision.removeprefix("mixed_")
            levers.append(
                f"the networks compute in {kind} and keep their weights, logits and losses "
                "in float32 (--mixed-precision)"
            )
        if self.steps_per_call > 1:
            levers.append(
                f"{self.steps_per_call} steps run per compiled call, with fewer round trips "
                "to Python (--steps-per-call)"
            )
        if levers:
            line += ". Speed-ups on: " + "; ".join(levers) + " (the flag forces each one)."
        return line


def runtime(config) -> Runtime:
    """Make (once per process) the strategy ``config.strategy`` names and resolve the
    ``auto`` levers for the hardware it runs on."""
    tf = _tf()
    _split_cpu()
    gpus = tf.config.list_physical_devices("GPU")
    name = config.strategy
    if name == "auto":
        name = "tpu" if on_tpu_runtime() else "mirrored" if len(gpus) > 1 else "one"
    strategy = _made.get(name) or _make_strategy(name, gpus)
    _made[name] = strategy
    accelerator = "tpu" if name == "tpu" else "gpu" if gpus else "cpu"
    fast = accelerator != "cpu"

    def lever(choice: str, auto: bool) -> bool:
        return auto if choice == "auto" else choice == "on"

    return Runtime(
        strategy=strategy,
        name=name,
        accelerator=accelerator,
        jit_compile=lever(config.jit_compile, fast),
        mixed_precision=precision(
            config.mixed_precision, accelerator, strategy.num_replicas_in_sync
        ),
        steps_per_call=config.steps_per_call or (ACCELERATOR_STEPS_PER_CALL if fast else 1),
        is_chief=is_chief(strategy) if name == "multiworker" else True,
    )


def precision(choice: str, accelerator: str, replicas: int = 1) -> str | None:
    """The Keras dtype policy for ``--mixed-precision``: float16 pays off on GPUs with
    tensor cores and TPUs compute in bfloat16; on a CPU auto keeps float32.

    float16 is refused on several replicas: Keras' loss-scale optimizer decides per
    replica, before the gradients are summed, whether they are finite, so replicas
    can disagree (a hang under XLA, an infinite update without it). Never run here.
    """
    if choice == "float16" and replicas > 1:
        raise UserError(
            f"--mixed-precision float16 is not supported on {replicas} replicas (Keras' "
            "loss scaling checks each replica's gradients apart, so replicas can disagree "
            "and hang). Use --mixed-precision bfloat16 (no loss scaling) or off, or one "
            "device (--strategy one)."
        )
    if choice == "auto":
        gpu = "float16" if replicas == 1 else "off"
        choice = {"gpu": gpu, "tpu": "bfloat16"}.get(accelerator, "off")
    return None if choice == "off" else f"mixed_{choice}"


def distribute(place: Runtime, dataset):
    """``dataset`` of global batches, split into per-replica batches for the strategy;
    with several workers each worker reads its own share of every batch."""
    if not place.distributed:
        return dataset
    tf = _tf()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return place.strategy.experimental_distribute_dataset(dataset.with_options(options))


def on_tpu_runtime() -> bool:
    """A Colab or Cloud TPU runtime (without asking the TPU, which takes seconds)."""
    return bool(
        os.environ.get("COLAB_TPU_ADDR")
        or os.environ.get("TPU_NAME")
        or os.environ.get("TPU_ACCELERATOR_TYPE")
        or Path("/dev/accel0").exists()
    )


def is_chief(strategy) -> bool:
    """The worker that writes a multi-worker run's files: the ``chief`` task, or
    worker 0 when the cluster has no chief."""
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def _make_strategy(name: str, gpus: list):
    tf = _tf()
    if name == "one":
        return tf.distribute.get_strategy()  # the default strategy: plain single-device code
    if name == "mirrored":
        devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise UserError(
                "--strategy multiworker needs the TF_CONFIG environment variable on every "
                "machine, naming the cluster and this machine's task, e.g. "
                'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}\' (docs/devices.md).'
            )
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as error:
            raise UserError(f"TF_CONFIG is not valid JSON ({error}).") from None
        # A dead worker fails the others' collectives after this long, not never.
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=60)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            raise UserError(
                f"--strategy tpu found no TPU ({str(error).splitlines()[0][:160]}). In Colab "
                "choose Runtime > Change runtime type > TPU, or use --strategy auto."
            ) from None
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}")


def _split_cpu() -> None:
    """Split the CPU into ``GAN_MNIST_CPU_DEVICES`` logical devices, before TensorFlow
    starts its runtime (so the first thing a process does)."""
    count = os.environ.get(CPU_DEVICES_ENV)
    if not count:
        return
    tf = _tf()
    if not count.isdigit() or int(count) < 1:
        raise UserError(f"{CPU_DEVICES_ENV} must be a positive whole number, got {count!r}.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration()] * int(count)
    if len(tf.config.get_logical_device_configuration(cpu) or [None]) == int(count):
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        raise UserError(
            f"{CPU_DEVICES_ENV}={count} came too late: TensorFlow had already started in "
            "this process. Set it before the process starts."
        ) from None


def _tf():
    import tensorflow as tf

    return tf
