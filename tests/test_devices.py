"""Strategies and hardware levers: 2 replicas on 2 logical CPUs, 2 workers on
127.0.0.1, checkpoints across strategies, and XLA / mixed precision / several
steps per call for one smoke epoch each (all on this CPU: no GPU or TPU here)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import REPO, run_cli, smoke_train_args, start_cli

from gan_mnist.checkpoint_files import load_generator
from gan_mnist.config import make_config, saved_config
from gan_mnist.devices import runtime
from gan_mnist.models import FAMILIES
from gan_mnist.records import read_history
from gan_mnist.state import TrainingState
from gan_mnist.training import train

TWO_CPUS = {"GAN_MNIST_CPU_DEVICES": "2"}
# Largest weight difference between one step on 2 replicas and the same step on one
# device (float32 sums in another order): measured 1.2e-7 against updates of ~0.04.
REPLICA_TOLERANCE = 1e-5


def test_auto_keeps_every_lever_off_on_a_cpu():
    place = runtime(make_config("smoke"))
    assert (place.name, place.replicas, place.accelerator) == ("one", 1, "cpu")
    assert not place.jit_compile and not place.mixed_precision and place.steps_per_call == 1
    assert "Speed-ups on" not in place.describe()


def test_float16_is_auto_on_one_gpu_only_and_refused_on_several_replicas(tmp_path):
    from gan_mnist.devices import precision
    from gan_mnist.errors import UserError

    assert precision("auto", "gpu", replicas=1) == "mixed_float16"
    assert precision("auto", "gpu", replicas=2) is None  # Keras' loss scaling is per replica
    assert precision("bfloat16", "gpu", replicas=2) == "mixed_bfloat16"
    with pytest.raises(UserError, match="float16 is not supported on 2 replicas"):
        precision("float16", "gpu", replicas=2)
    refused = run_cli(
        "train", "--preset", "smoke", "--strategy", "mirrored", "--mixed-precision", "float16",
        "--out", tmp_path / "run", env={**os.environ, "GAN_MNIST_CPU_DEVICES": "2"},
    )  # fmt: skip
    assert refused.returncode == 2 and "--mixed-precision bfloat16" in refused.stderr


def test_what_auto_picks_on_one_gpu_and_on_two_is_said_in_plain_words(monkeypatch):
    """`auto` on GPUs, with TensorFlow's device list saying there are some (this
    machine has none: the levers are chosen from that list alone)."""
    import tensorflow as tf

    from gan_mnist import devices

    class Strategy:  # what MirroredStrategy would be on two GPUs
        num_replicas_in_sync = 2

    for count in (1, 2):
        gpus = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(count)]
        real = tf.config.list_physical_devices
        monkeypatch.setattr(
            tf.config,
            "list_physical_devices",
            lambda kind=None, gpus=gpus, real=real: gpus if kind == "GPU" else real(kind),
        )
        monkeypatch.setattr(devices, "_made", {})
        monkeypatch.setattr(devices, "_make_strategy", lambda name, found: (
            tf.distribute.get_strategy() if name == "one" else Strategy()
        ))  # fmt: skip
        place = runtime(make_config("smoke"))
        text = place.describe()
        assert (place.name, place.accelerator, place.replicas) == (
            ("one", "gpu", 1) if count == 1 else ("mirrored", "gpu", 2)
        )
        assert place.jit_compile and place.steps_per_call == devices.ACCELERATOR_STEPS_PER_CALL
        assert "XLA compiles each training step" in text
        assert f"{devices.ACCELERATOR_STEPS_PER_CALL} steps run per compiled call" in text
        if count == 1:
            assert place.mixed_precision == "mixed_float16"
            assert "compute in float16 and keep their weights" in text
        else:  # float16's loss scaling is per replica: float32 on several
            assert place.mixed_precision is None and "float16" not in text


@pytest.mark.parametrize(
    "lever",
    [
        {"jit_compile": "on"},
        {"mixed_precision": "float16"},
        {"mixed_precision": "bfloat16"},
        {"steps_per_call": 3},
    ],
    ids=["xla", "mixed_float16", "mixed_bfloat16", "3_steps_per_call"],
)
def test_each_lever_trains_a_finite_smoke_epoch_with_a_restorable_checkpoint(
    tmp_path, tiny_npz, lever
):
    from gan_mnist.data import load_dataset

    config = make_config("smoke", epochs=1, seed=5, **lever)
    summary = train(config, tmp_path, data=load_dataset("mnist", str(tiny_npz)), quiet=True)

    (row,) = read_history(tmp_path / "history.csv", 1)
    assert np.isfinite([float(row["d_loss"]), float(row["g_loss"])]).all()
    place = runtime(config)
    assert place.jit_compile == (lever.get("jit_compile") == "on")
    wanted = lever.get("mixed_precision")
    assert place.mixed_precision == (f"mixed_{wanted}" if wanted else None)
    # The checkpoint restores, with the lever and without it (a run may move machines).
    for settings in (config, make_config("smoke", epochs=1, seed=5)):
        state = TrainingState(settings, tmp_path)
        assert state.restore() == (1, 0)
        assert state.global_step == summary.images_trained // config.batch_size
    models, _, _ = load_generator(tmp_path)
    assert np.isfinite(models.generate(np.zeros((2, 100), "float32")).numpy()).all()
    # generator.keras is float32 whatever the run computed in (it is loaded on CPUs).
    saved = keras.models.load_model(tmp_path / "generator.keras")
    assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}
    np.testing.assert_allclose(
        saved(np.ones((2, 100), "float32")).numpy(),
        models.generator(np.ones((2, 100), "float32")).numpy().astype("float32"),
        atol=0.02,  # float16 computation against float32 of the same weights
    )


def test_replicas_match_one_device_with_synchronised_batchnorm_and_draw_their_own_noise():
    """One SGD step on 2 replicas = the same step on 1 device (a twice-scaled loss would
    double the update); without synchronised BatchNorm they differ; noise differs."""
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "replicas_probe.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **TWO_CPUS},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])

    assert probe["replicas"] == 2
    assert probe["dropout"] > 0  # each replica drops its own units
    for family in FAMILIES:
        measured = probe[family]
        assert measured["sync"] < REPLICA_TOLERANCE, (family, measured)
        assert measured["update"] > 1000 * REPLICA_TOLERANCE  # the step did move the weights
        assert measured["nosync"] > 100 * measured["sync"]  # the setting matters
    first, second = (np.array(noise) for noise in probe["noise"])
    assert first.shape == second.shape == (4, 100)
    assert np.abs(first - second).min() > 0  # every number differs between the replicas


@pytest.mark.parametrize("model", list(FAMILIES))
def test_mirrored_smoke_run_resumes_and_samples_on_one_device(tmp_path, tiny_npz, model):
    out = tmp_path / "run"
    args = smoke_train_args(tiny_npz, out, epochs=2, seed=4) + ["--model", model]

    two = run_cli(*args, "--strategy", "mirrored", env=TWO_CPUS)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "mirrored strategy, 2 replica(s)" in two.stdout
    assert (out / "dcgan_animation.gif").exists() and (out / "generator.keras").exists()

    args[args.index("--epochs") + 1] = "3"
    one = run_cli(*args, "--strategy", "one")
    assert one.returncode == 0, one.stderr[-2000:]
    assert "resuming from the checkpoint of epoch 2" in one.stdout
    assert len(read_history(out / "history.csv", 3)) == 3

    sample = run_cli("sample", out, "--n", 8, "--out", tmp_path / "s.npz", "--seed", 1)
    assert sample.returncode == 0, sample.stderr[-2000:]
    assert np.load(tmp_path / "s.npz")["images"].shape == (8, 28, 28)


def test_global_batch_must_split_over_the_replicas(tmp_path, tiny_npz):
    args = smoke_train_args(tiny_npz, tmp_path / "run", epochs=1, seed=1)
    result = run_cli(*args, "--strategy", "mirrored", "--batch-size", "31", env=TWO_CPUS)
    assert result.returncode == 2
    assert "must split evenly over the 2 replicas" in result.stderr
    assert "Traceback" not in result.stderr


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(args: list[str], scratch: Path) -> list[subprocess.Popen]:
    """Two `gan-mnist train --strategy multiworker` processes on 127.0.0.1; each
    worker's temporary files go to ``scratch`` so the test can check they are gone."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {"TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(scratch)}
        workers.append(start_cli(*args, "--strategy", "multiworker", env=env))
    return workers


def finish(workers: list[subprocess.Popen], timeout: float = 240) -> list[tuple[int, str, str]]:
    """Wait for every worker (killing any still running at the deadline)."""
    deadline = time.monotonic() + timeout
    results = []
    for worker in workers:
        try:
            stdout, stderr = worker.communicate(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            worker.kill()
            stdout, stderr = worker.communicate()
        results.append((worker.returncode, stdout, stderr))
    return results


def workers_past_their_first_checkpoint(args, scratch: Path, out: Path):
    """Two workers started, once the chief has written a checkpoint: (chief, other)."""
    chief, other = start_workers(args, scratch)
    deadline = time.monotonic() + 180
    while not list((out / "training_checkpoints").glob("ckpt-*.index")):
        assert time.monotonic() < deadline and chief.poll() is None, chief.stderr.read()[-3000:]
        time.sleep(0.5)
    return chief, other


def assert_a_rerun_resumes(args: list[str], scratch: Path, out: Path) -> None:
    """Both workers started again, one epoch further, resume from the checkpoint."""
    epoch = int(read_history(out / "history.csv", 10_000)[-1]["epoch"])
    args[args.index("--epochs") + 1] = str(epoch + 1)
    for code, stdout, stderr in finish(start_workers(args, scratch)):
        assert code == 0, stderr[-2000:]
        assert "resuming from the checkpoint of epoch" in stdout


def test_two_workers_train_only_the_chief_writes_and_a_rerun_resumes(tmp_path, tiny_npz):
    out, scratch = tmp_path / "run", tmp_path / "tmp"
    scratch.mkdir()
    args = smoke_train_args(tiny_npz, out, epochs=2, seed=7)

    results = finish(start_workers(args, scratch))
    for code, stdout, stderr in results:
        assert code == 0, stderr[-2000:]
        assert "multiworker strategy, 2 replica(s)" in stdout
    assert (out / "dcgan_animation.gif").exists() and len(read_history(out / "history.csv", 2)) == 2
    assert "outputs in" in results[0][1] and "outputs in" not in results[1][1]
    assert not list(scratch.glob("gan-mnist-worker-*"))  # the other worker's scratch is gone
    assert saved_config(out).seed == 7

    args[args.index("--epochs") + 1] = "3"
    for code, stdout, stderr in finish(start_workers(args, scratch)):
        assert code == 0, stderr[-2000:]
        assert "resuming from the checkpoint of epoch 2" in stdout
    assert len(read_history(out / "history.csv", 3)) == 3


def test_a_killed_worker_stops_the_other_with_a_clear_message_and_the_rerun_resumes(
    tmp_path, tiny_npz
):
    out, scratch = tmp_path / "run", tmp_path / "tmp"
    scratch.mkdir()
    args = smoke_train_args(tiny_npz, out, epochs=400, seed=8)
    chief, other = workers_past_their_first_checkpoint(args, scratch, out)

    other.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    (code, _, stderr), _ = finish([chief, other], timeout=120)

    assert code == 2, stderr[-2000:]
    assert time.monotonic() - killed < 120
    assert "another worker of this multi-worker run stopped answering" in stderr
    assert "Traceback" not in stderr
    assert_a_rerun_resumes(args, scratch, out)


def test_ctrl_c_on_one_worker_stops_both_after_the_same_step_and_the_chief_saves(
    tmp_path, tiny_npz
):
    out, scratch = tmp_path / "run", tmp_path / "tmp"
    scratch.mkdir()
    args = smoke_train_args(tiny_npz, out, epochs=400, seed=9)
    chief, other = workers_past_their_first_checkpoint(args, scratch, out)

    other.send_signal(signal.SIGINT)  # the other worker only: the chief hears nothing
    asked = time.monotonic()
    (chief_code, chief_out, chief_err), (other_code, _, other_err) = finish([chief, other])

    assert time.monotonic() - asked < 50  # not the 60 s of a collective's timeout
    assert other_code == 130, other_err[-2000:]
    assert chief_code == 0, chief_err[-2000:]
    assert "stopped together with another worker of this multi-worker run" in chief_out
    assert "stopped answering" not in chief_err + other_err
    assert_a_rerun_resumes(args, scratch, out)


def test_networks_passed_in_compute_in_their_own_precision_and_the_line_says_so(capsys):
    from dataclasses import replace

    from gan_mnist.devices import runtime
    from gan_mnist.models import dcgan
    from gan_mnist.models.base import GanModels
    from gan_mnist.training import in_their_precision

    models = GanModels.of(dcgan.build_generator(100, 8), dcgan.build_discriminator(8, 0.3))
    # What `auto` picks on one GPU, where the notebook's float32 networks are passed in.
    gpu = replace(runtime(make_config("smoke")), accelerator="gpu", mixed_precision="mixed_float16")
    place = in_their_precision(gpu, models)
    assert place.mixed_precision is None
    assert "mixed precision off" in place.describe() and "float16" not in place.describe()
    assert "built in float32 and compute in it" in capsys.readouterr().out
