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
    (run / "training_checkpoints" / "damaged").mkdir(parents=True)
    (run / "training_checkpoints" / "damaged" / "ckpt-8.index").write_text("x")
    assert runfolder.holds(run) == runfolder.DAMAGED
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"lr": 3}')
    assert runfolder.holds(theirs) == runfolder.OTHER
    assert runfolder.holds(tmp_path) == runfolder.OTHER


def test_a_config_json_of_someone_elses_is_theirs_and_left_alone(tmp_path, tiny_npz):
    # The reproduction: mkdir p; echo '{"lr": 3}' > p/config.json; echo x > p/notes.txt
    p = tmp_path / "p"
    p.mkdir()
    (p / "config.json").write_text('{"lr": 3}\n')
    (p / "notes.txt").write_text("x\n")
    refused = smoke_cli(tiny_npz, p, "--epochs", 1)
    assert refused.returncode == 2, refused.stdout
    assert "its config.json is not one this package wrote" in refused.stderr
    assert sorted(x.name for x in p.iterdir()) == ["config.json", "notes.txt"]
    assert (p / "config.json").read_text() == '{"lr": 3}\n'
    # Readers refuse it too, as bad input (exit 2), not as a bug.
    sampled = run_cli("sample", p, "--n", 4, "--out", tmp_path / "s.npz")
    assert sampled.returncode == 2 and "this package did not write it" in sampled.stderr
    # A run of an earlier version (settings, no mark) is named as one, and still refused.
    earlier = json.loads(make_config("smoke", seed=1).to_json())
    del earlier["format"]
    (p / "config.json").write_text(json.dumps(earlier))
    old_run = smoke_cli(tiny_npz, p, "--epochs", 1)
    assert old_run.returncode == 2 and "a run of an earlier gan-mnist" in old_run.stderr
    old_sample = run_cli("sample", p, "--n", 4, "--out", tmp_path / "s.npz")
    assert old_sample.returncode == 2 and "a run of an earlier gan-mnist" in old_sample.stderr
    (p / "config.json").write_text("[1, 2]")
    listed = run_cli("sample", p, "--n", 4, "--out", tmp_path / "s.npz")
    assert listed.returncode == 2 and "holds a JSON list" in listed.stderr, listed.stderr


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
