"""A run is its checkpoint: one answer to "what does this folder hold?", the settings a
checkpoint's position counts in saved inside it, a damaged run that stays refused, and
the files written beside it (config.json, generator_best.keras) never ahead of it."""

import hashlib
import json
import os

import numpy as np
import pytest

from gan_mnist import files, runfolder
from gan_mnist.config import make_config
from gan_mnist.data import load_mnist
from gan_mnist.errors import UserError
from gan_mnist.files import RUN_FORMAT
from gan_mnist.training import train
from tests.conftest import run_cli


def smoke_cli(data, out, *extra, env=None):
    return run_cli("train", "--preset", "smoke", "--data", data, "--out", out, *extra, env=env)


def test_what_a_folder_holds(tmp_path):
    assert runfolder.holds(tmp_path / "missing") == runfolder.NOTHING
    assert runfolder.holds(tmp_path) == runfolder.NOTHING
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(make_config("smoke").to_json())
    assert json.loads((run / "config.json").read_text())["format"] == RUN_FORMAT
    assert runfolder.holds(run) == runfolder.RUN
    assert runfolder.holds(tmp_path) == runfolder.RUNS
    (run / "training_checkpoints" / "damaged" / "1").mkdir(parents=True)
    (run / "training_checkpoints" / "damaged" / "1" / "ckpt-8.index").write_text("x")
    assert runfolder.holds(run) == runfolder.DAMAGED
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"lr": 3}')
    assert runfolder.holds(theirs) == runfolder.OTHER
    assert runfolder.holds(tmp_path) == runfolder.OTHER


def tutorial_checkpoints(folder):
    """What the TensorFlow DCGAN tutorial's own code leaves: its networks and
    optimizers in training_checkpoints/ckpt-N, and nothing else."""
    import keras
    import tensorflow as tf

    from gan_mnist.models import dcgan

    checkpoint = tf.train.Checkpoint(
        generator_optimizer=keras.optimizers.Adam(1e-4),
        discriminator_optimizer=keras.optimizers.Adam(1e-4),
        generator=dcgan.build_generator(100, 8),
        discriminator=dcgan.build_discriminator(8),
    )
    for _ in range(2):
        checkpoint.save(str(folder / "training_checkpoints" / "ckpt"))


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_tensorflow_tutorials_checkpoints_are_someone_elses_and_left_alone(tmp_path, tiny_npz):
    theirs = tmp_path / "tutorial"
    tutorial_checkpoints(theirs)
    (theirs / "training_checkpoints" / "ckpt_temp_1").write_text("the tutorial's")
    assert runfolder.holds(theirs) == runfolder.OTHER
    before = snapshot(theirs)
    refused = smoke_cli(tiny_npz, theirs, "--epochs", 1)
    assert refused.returncode == 2, refused.stdout
    assert "holds checkpoints that are not a run of ours" in refused.stderr
    assert snapshot(theirs) == before  # no lock file, no clean-up, nothing moved
    sampled = run_cli("sample", theirs, "--n", 4, "--out", tmp_path / "s.npz")
    assert sampled.returncode == 2 and "Traceback" not in sampled.stderr
    assert snapshot(theirs) == before


def test_a_run_whose_config_json_is_lost_goes_on_with_its_checkpoints_settings(tmp_path, tiny_npz):
    out = tmp_path / "r"
    own = ("--loss", "hinge", "--gen-lr", "0.0003", "--ema", "0.9", "--seed", 4)
    assert smoke_cli(tiny_npz, out, "--epochs", 1, *own).returncode == 0
    written = json.loads((out / "config.json").read_text())
    (out / "config.json").unlink()
    assert runfolder.holds(out) == runfolder.RUN  # ours, by the settings in its checkpoint

    resumed = run_cli("train", "--out", out, "--epochs", 2, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "config.json is missing; using its checkpoint's settings" in resumed.stdout
    assert "resuming from the checkpoint of epoch 1" in resumed.stdout
    # Its own settings, not the default preset's: and config.json is whole again.
    assert json.loads((out / "config.json").read_text()) == {**written, "epochs": 2}


def test_a_runs_identity_without_out_includes_its_datas_contents(tmp_path, tiny_npz):
    copy = tmp_path / "same.npz"
    copy.write_bytes(tiny_npz.read_bytes())
    other = tmp_path / "other.npz"
    arrays = dict(np.load(tiny_npz))
    arrays["x_train"] = arrays["x_train"][::-1].copy()
    np.savez(other, **arrays)

    def folder(data):
        return runfolder.run_folder(make_config("smoke", seed=1, data=str(data)), tmp_path)

    assert folder(tiny_npz) == folder(copy)  # the same images, wherever they are
    assert folder(other) != folder(tiny_npz)
    assert folder(tiny_npz) != runfolder.run_folder(make_config("smoke", seed=1), tmp_path)


def test_a_kill_after_a_batch_size_change_leaves_config_json_with_its_checkpoint(
    tmp_path, tiny_npz
):
    out = tmp_path / "r"
    args = ("--epochs", 1, "--batch-size", 8, "--seed", 2)
    stopped = smoke_cli(tiny_npz, out, *args, env={"GAN_MNIST_FAULT": "step@5:SIGINT"})
    assert stopped.returncode == 130, stopped.stderr
    # A new batch size, then killed before its first checkpoint: config.json still
    # describes the checkpoint (batch 8), not the change that never reached one.
    killed = run_cli("train", "--out", out, "--batch-size", 64, env={"GAN_MNIST_FAULT": "step"})
    assert killed.returncode == -9, killed.stderr
    assert json.loads((out / "config.json").read_text())["batch_size"] == 8
    resumed = run_cli("train", "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint of epoch 0 and 5 steps of epoch 1" in resumed.stdout
    rows = (out / "history.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("1,")  # epoch 1 recorded, once


def test_a_mid_epoch_resume_on_other_images_starts_that_epoch_again(tmp_path, tiny_npz):
    out = tmp_path / "r"
    args = ("--epochs", 1, "--batch-size", 8, "--seed", 2)
    stopped = smoke_cli(tiny_npz, out, *args, env={"GAN_MNIST_FAULT": "step@5:SIGINT"})
    assert stopped.returncode == 130, stopped.stderr
    other = tmp_path / "other.npz"
    with np.load(tiny_npz) as data:
        arrays = dict(data)
    arrays["x_train"] = arrays["x_train"][::-1].copy()  # the same size, other images
    np.savez(other, **arrays)
    resumed = run_cli("train", "--out", out, "--data", other)
    assert resumed.returncode == 0, resumed.stderr
    assert "the training images changed in the middle of epoch 1" in resumed.stdout


def test_a_run_whose_checkpoints_are_all_damaged_stays_refused(tmp_path, tiny_npz):
    out = tmp_path / "r"
    assert smoke_cli(tiny_npz, out, "--epochs", 1, "--seed", 1).returncode == 0
    for data_file in (out / "training_checkpoints").glob("ckpt-*.data-*"):
        data_file.write_bytes(b"garbage")
    before = sorted(p.name for p in (out / "DCGAN_Images").iterdir())
    history = (out / "history.csv").read_text()
    for attempt in range(2):  # the first sets the files aside; the next must not restart
        again = run_cli("train", "--out", out, "--epochs", 2)
        assert again.returncode == 2, (attempt, again.stdout)
        assert "no intact checkpoint is left" in again.stderr
    assert sorted(p.name for p in (out / "DCGAN_Images").iterdir()) == before
    assert (out / "history.csv").read_text() == history


def test_setting_a_damaged_checkpoint_aside_never_overwrites_one_set_aside_before(tmp_path):
    # A retrained ckpt-2 damaged again goes into a new damaged/N, beside the first.
    import tensorflow as tf

    from gan_mnist.checkpoint_files import newest_intact_checkpoint

    directory = tmp_path / files.CHECKPOINT_DIR
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable([1.0])), directory, 5)
    for attempt in (b"1", b"2"):
        manager.save(checkpoint_number=1)
        manager.save(checkpoint_number=2)
        for data_file in directory.glob("ckpt-2.data-*"):
            data_file.write_bytes(b"garbage " + attempt)
        good, damaged = newest_intact_checkpoint(tmp_path, set_aside=True)
        assert os.path.basename(good) == "ckpt-1", attempt
        assert [os.path.basename(p) for p in damaged] == ["ckpt-2"], attempt
    aside = sorted((directory / files.DAMAGED_DIR).iterdir())
    assert [p.name for p in aside] == ["1", "2"]
    assert [next(p.glob("ckpt-2.data-*")).read_bytes() for p in aside] == [
        b"garbage 1",
        b"garbage 2",
    ]


def test_a_seed_given_to_a_run_that_continues_is_refused_by_name(tmp_path, tiny_npz):
    out = tmp_path / "r"
    assert smoke_cli(tiny_npz, out, "--epochs", 1, "--seed", 3).returncode == 0
    refused = run_cli("train", "--out", out, "--epochs", 2, "--seed", 5)
    assert refused.returncode == 2 and "--seed 3 -> 5" in refused.stderr


@pytest.mark.parametrize("command", ["interpolate", "evaluate", "sample"])
def test_a_negative_seed_is_bad_input(smoke_runs, tmp_path, command):
    out = ["--out", tmp_path / "x.gif"] if command != "evaluate" else []
    if command == "sample":
        out = ["--out", tmp_path / "x.npz"]
    result = run_cli(command, smoke_runs["dcgan"], "--seed", -1, *out)
    assert result.returncode == 2, result.stderr
    assert "--seed must be a whole number from 0" in result.stderr
    assert "unexpected" not in result.stderr


def test_the_outputs_line_names_only_what_was_written(tmp_path, tiny_npz):
    out = tmp_path / "r"
    stopped = smoke_cli(tiny_npz, out, "--epochs", 2, env={"GAN_MNIST_FAULT": "step@2:SIGINT"})
    assert stopped.returncode == 130, stopped.stderr
    (line,) = [x for x in stopped.stdout.splitlines() if x.startswith("outputs in")]
    assert "generator.keras" in line and "training_checkpoints/" in line
    for name in ("dcgan_animation.gif", "dcgan_animation.png", "dcgan_images.zip"):
        assert name not in line and not (out / name).exists()


def test_a_user_built_run_without_its_generator_keras_says_why(tmp_path, tiny_npz):
    from gan_mnist.checkpoint_files import load_generator
    from gan_mnist.models import dcgan
    from gan_mnist.models.base import GanModels

    models = GanModels.of(dcgan.build_generator(100, 8), dcgan.build_discriminator(8, 0.3))
    train(
        make_config("smoke", epochs=1, seed=1), tmp_path, data=load_mnist(tiny_npz), models=models
    )
    (tmp_path / "generator.keras").unlink()
    with pytest.raises(UserError, match="networks built outside the package"):
        load_generator(tmp_path)


def test_a_run_of_networks_built_outside_is_never_continued_with_the_familys(tmp_path, tiny_npz):
    """The notebook's case: an edited activation keeps every weight's shape, so only
    the run's record of its networks can tell them from the family's."""
    import keras

    from gan_mnist.models import dcgan
    from gan_mnist.models.base import GanModels

    generator = dcgan.build_generator(100, 8)
    edited = keras.models.clone_model(
        generator,
        clone_function=lambda layer: (
            keras.layers.LeakyReLU(negative_slope=0.1)
            if isinstance(layer, keras.layers.LeakyReLU)
            else layer.__class__.from_config(layer.get_config())
        ),
    )
    models = GanModels.of(edited, dcgan.build_discriminator(8, 0.3))
    config = make_config("smoke", epochs=1, seed=1)
    out = runfolder.run_folder(config, tmp_path, models=models)
    train(config, out, data=load_mnist(tiny_npz), models=models, quiet=True)
    before = (out / "generator.keras").read_bytes()

    continued = run_cli("train", "--out", out, "--epochs", 2, "--data", tiny_npz)
    assert continued.returncode == 2, continued.stdout
    assert "networks built outside the package" in continued.stderr
    assert "Continue it from Python with the same networks" in continued.stderr
    assert (out / "generator.keras").read_bytes() == before
    with pytest.raises(UserError, match="networks built outside the package"):
        train(config, out, data=load_mnist(tiny_npz), quiet=True)  # from Python, without them
    # With its own networks it goes on.
    resumed = train(make_config("smoke", epochs=2, seed=1), out, data=load_mnist(tiny_npz),
                    models=models, quiet=True)  # fmt: skip
    assert (resumed.first_epoch, resumed.last_epoch) == (2, 2)


def test_the_best_generator_is_written_with_its_checkpoint(tmp_path, tiny_npz, monkeypatch):
    import gan_mnist.epochs as epochs
    from gan_mnist.evaluator import TrainingEvaluation

    def always_better(self, models):  # every evaluation is "the best yet"
        return {key: 1.0 for key in self.METRICS}, True

    monkeypatch.setattr(TrainingEvaluation, "__call__", always_better)
    seen = {}

    def crash_at_epoch_2_before_its_checkpoint(name):
        if name == "after-epoch-image" and seen.get("epochs") == 1:
            raise RuntimeError("the machine went down")

    def remember(epoch, logs):
        seen["epochs"] = epoch
        seen["best"] = hashlib.sha256((tmp_path / "generator_best.keras").read_bytes()).digest()

    monkeypatch.setattr(epochs, "fault_point", crash_at_epoch_2_before_its_checkpoint)
    config = make_config("smoke", epochs=2, seed=1, eval_every=1, eval_samples=8)
    with pytest.raises(RuntimeError, match="went down"):
        train(config, tmp_path, data=load_mnist(tiny_npz), quiet=True, on_epoch_end=remember)
    # Epoch 2 was evaluated as the best, but its checkpoint was never written: the
    # best generator is still epoch 1's, the one a resume's history agrees with.
    best = hashlib.sha256((tmp_path / "generator_best.keras").read_bytes()).digest()
    assert seen["epochs"] == 1 and best == seen["best"]


def test_a_mid_epoch_checkpoint_keeps_the_best_generator_it_covers(tmp_path, tiny_npz, monkeypatch):
    """--checkpoint-every larger than a run's epochs: its checkpoints come from the
    clock, mid-epoch. The crash after one of them must not lose the best epoch before."""
    import gan_mnist.epochs as epochs
    from gan_mnist.evaluator import TrainingEvaluation

    def always_better(self, models):
        return {key: 1.0 for key in self.METRICS}, True

    monkeypatch.setattr(TrainingEvaluation, "__call__", always_better)
    clock = {"epochs": 0, "saved_mid": False}

    def mid_epoch_due(self):  # the clock is due once, in the middle of epoch 2
        due = clock["epochs"] == 1 and not clock["saved_mid"]
        clock["saved_mid"] = clock["saved_mid"] or due
        return due

    def crash_after_that_checkpoint(name):
        if name == "step" and clock["saved_mid"]:
            raise RuntimeError("Colab disconnected")

    def count(epoch, logs):
        clock["epochs"] = epoch

    monkeypatch.setattr(epochs.CheckpointClock, "mid_epoch_due", mid_epoch_due)
    monkeypatch.setattr(epochs, "fault_point", crash_after_that_checkpoint)
    config = make_config(
        "smoke", epochs=3, seed=1, eval_every=1, eval_samples=8, checkpoint_every=15
    )
    with pytest.raises(RuntimeError, match="Colab disconnected"):
        train(config, tmp_path, data=load_mnist(tiny_npz), quiet=True, on_epoch_end=count)
    assert clock["epochs"] == 1 and clock["saved_mid"]
    # Epoch 1 was the best; the only checkpoint (mid-epoch 2) covers it.
    assert (tmp_path / "generator_best.keras").exists()
    monkeypatch.undo()  # the machine is back: the run resumes from that checkpoint
    resumed = train(config, tmp_path, data=load_mnist(tiny_npz), quiet=True)
    assert resumed.first_epoch == 2 and (tmp_path / "generator_best.keras").exists()


def test_atomic_path_syncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with files.atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("whole")
    assert calls[0][0] == "fsync" and calls[0][1].endswith("a.txt") and calls[0][1] != "a.txt"
    assert calls[1:] == [("replace", "a.txt"), ("fsync", tmp_path.name)]
    assert (tmp_path / "a.txt").read_text() == "whole"


def test_a_checkpoint_is_on_the_disk_before_the_index_names_it(tmp_path, monkeypatch):
    # TensorFlow renames its `checkpoint` index over the old one without an fsync:
    # after a power loss it could name files that never reached the disk.
    from pathlib import Path

    from gan_mnist.state import TrainingState

    index = tmp_path / "training_checkpoints" / "checkpoint"
    synced = []  # (name, what the index said at that moment)
    monkeypatch.setattr(
        files,
        "sync",
        lambda path: synced.append((Path(path).name, index.read_text() if index.exists() else "")),
    )
    state = TrainingState(make_config("smoke", seed=1), tmp_path)
    name = Path(state.save()).name
    names = [synced_name for synced_name, _ in synced]
    written = [n for n in names if n.startswith(name + ".")]
    assert sorted(written) == sorted(p.name for p in index.parent.glob(name + ".*"))
    assert len(written) >= 2  # its .index and at least one .data file
    assert all(f'"{name}"' not in said for n, said in synced if n in written)
    assert names.index("training_checkpoints") > names.index(written[-1])  # their folder entries
    after = names.index("checkpoint")  # the index itself, after it named the checkpoint
    assert f'"{name}"' in synced[after][1]
    assert "training_checkpoints" in names[after + 1 :]  # and its rename


def test_an_index_a_power_loss_emptied_is_rebuilt_from_the_checkpoint_files(tmp_path):
    # Between TensorFlow's rename of its `checkpoint` index and the fsync after it, a
    # power loss can leave the index empty, which CheckpointManager refuses to read.
    from gan_mnist.state import TrainingState

    config = make_config("smoke", seed=1)
    state = TrainingState(config, tmp_path)
    state.step.assign_add(3)
    saved = state.save()
    (tmp_path / "training_checkpoints" / "checkpoint").write_text("")
    again = TrainingState(config, tmp_path)
    assert again.restore() == (0, 0) and again.global_step == 3
    assert again.manager.latest_checkpoint == saved
